import Testing
import TokenctlModel
import TokenctlPlanner

private let x = "payments/x"

/// The only change of a plan (a failed expectation when there is not exactly one).
private func single(_ plan: Plan, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> PlannedChange {
    try #require(plan.changes.count == 1, "changes: \(rows(plan))", sourceLocation: sourceLocation)
    return plan.changes[0]
}

@Suite struct PlanDetailTests {
    @Test func clockIsAMondayNoonInsideTheWeekdayWindow() {
        #expect(now.weekday == 0)
        #expect(window("Mon-Fri 09:00-17:00 UTC").contains(now))
        #expect(!window("Sat,Sun 09:00-17:00 UTC").contains(now))
    }

    @Test func fixtureTokenStartsEarlyInItsWindowOpening() {
        // The window cases rely on payments/x being spread less than 3h into an opening (so a Mon-Fri 09:00-17:00
        // rotation falls due before the clock's 12:00).
        #expect((Schedule.spreadHash(tid(x)) >> 20) % 14_400 < 3 * 3_600)
    }

    @Test func noChanges() {
        let result = plan([token(x)], [recorded(x, versions: [version(1, issuedAt: ago("10d"))])])
        #expect(result.changes.isEmpty)
        #expect(!result.hasChanges)
        #expect(result.counts.isEmpty)
        // The next thing due is the rotation, which comes before the latest safe rotation and the expiry.
        let due = Schedule.rotationDue(id: tid(x), issuedAt: ago("10d"), settings: Schedule.Settings(token(x)))
        #expect(result.nextDueAt == due)
        #expect(result.nextDueAt.map { $0 > now } == true)
    }

    @Test func notIssued() throws {
        let change = try single(plan([token("payments/orders-api-ci")]))
        #expect(change.detail == "no credential yet")
        #expect(change.version == nil)
        #expect(change.newVersion == 1)
        #expect(change.issuer == "local")
        // Data for --json: the lifespan and a timestamp, not prose.
        #expect(change.facts == ["lifespan": "90d", "newVersionExpiresAt": Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 90 * 86_400).description])
        #expect(PlanRenderer.extra(change) == "expires in 90d")

        let permanent = try single(plan([token(x, lifespan: "never", every: nil)]))
        #expect(permanent.facts == ["lifespan": "never"])
        #expect(PlanRenderer.extra(permanent) == "never expires")

        let afterPending = try single(plan([token(x)], [recorded(x, versions: [version(1, status: .revoked), version(2, status: .pending)])]))
        #expect(afterPending.newVersion == 3)
    }

    @Test func rotationDueFigures() throws {
        let change = try single(plan([token(x)], [recorded(x, versions: [version(3, issuedAt: ago("31d"))])]))
        #expect(change.action == .rotate)
        #expect(change.version == 3)
        #expect(change.newVersion == 4)
        #expect(change.detail == "age 31d ≥ every 30d")
        let due = try #require(Schedule.rotationDue(id: tid(x), issuedAt: ago("31d"), settings: Schedule.Settings(token(x))))
        #expect(change.facts == ["age": "31d", "every": "30d", "dueAt": due.description, "lifespan": "90d",
                                 "newVersionExpiresAt": Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 90 * 86_400).description])
        // issuedAt + every, at most every/20 earlier.
        #expect(due <= ago("31d") + duration("30d"))
        #expect(due >= ago("31d") + duration("28d12h"))
    }

    @Test func rotationDueInsideAWindowNamesTheWindow() throws {
        let change = try single(plan([token(x, window: "Mon-Fri 09:00-17:00 UTC")], [recorded(x, versions: [version(1, issuedAt: ago("33d"))])]))
        #expect(change.reason == .rotationDue)
        #expect(change.detail == "age 33d ≥ every 30d (window Mon-Fri 09:00-17:00 UTC)")
        let dueAt = try timestamp(#require(change.facts["dueAt"]))
        #expect(window("Mon-Fri 09:00-17:00 UTC").contains(dueAt))
    }

    @Test func outsideTheWindowWaitsForTheNextSaturday() throws {
        let text = "Sat,Sun 09:00-17:00 UTC"
        let result = plan([token(x, window: text)], [recorded(x, versions: [version(1, issuedAt: issuedDue(x, every: "30d", since: "1h"))])])
        #expect(result.changes.isEmpty)
        let next = try #require(result.nextDueAt)
        #expect(next.weekday == 5)
        #expect(window(text).contains(next))
        #expect(next >= timestamp("2026-12-05T09:00:00Z"))
        #expect(next < timestamp("2026-12-05T13:00:00Z"))  // within the first half of the opening
    }

    @Test func longOverdueOutsideTheWindowStillWaits() {
        // A token whose rotation fell due inside a window that passed without a plan (e.g. the controller was down):
        // rotations may only start inside the window, so it must wait for the next opening.
        let text = "Sat,Sun 09:00-17:00 UTC"
        let result = plan([token(x, window: text)], [recorded(x, versions: [version(1, issuedAt: ago("40d"))])])
        #expect(rows(result) == [])
        #expect(result.nextDueAt.map { window(text).contains($0) && $0 > now } == true)
    }

    @Test func expiresSoon() throws {
        let expiresAt = fromNow("12h")
        let change = try single(plan([token(x)], [recorded(x, versions: [version(1, issuedAt: ago("5d"), expiresAt: expiresAt)])]))
        #expect(change.detail == "v1 expires 2026-12-01 00:00 UTC, within its overlap 1d")
        #expect(change.facts == ["expiresAt": expiresAt.description, "overlap": "1d", "lifespan": "90d",
                                 "newVersionExpiresAt": Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 90 * 86_400).description])

        let windowed = try single(plan([token(x, window: "Sat,Sun 09:00-17:00 UTC")],
                                       [recorded(x, versions: [version(1, issuedAt: ago("5d"), expiresAt: expiresAt)])]))
        #expect(windowed.reason == .expiresSoon)
        #expect(windowed.detail == "v1 expires 2026-12-01 00:00 UTC, within its overlap 1d; rotating outside the window")
    }

    @Test func expiresSoonIsNotDueYetAnHourEarlier() {
        // Expiry 25h away with a 24h overlap: nothing now, due in an hour.
        let result = plan([token(x)], [recorded(x, versions: [version(1, issuedAt: ago("5d"), expiresAt: fromNow("25h"))])])
        #expect(result.changes.isEmpty)
        #expect(result.nextDueAt == fromNow("1h"))
    }

    @Test func expired() throws {
        let change = try single(plan([token(x)], [recorded(x, versions: [version(1, issuedAt: ago("91d"))])]))
        #expect(change.reason == .expired)
        #expect(change.detail == "v1 expired 24h ago at 2026-11-29 12:00 UTC")
        #expect(change.facts["expiresAt"] == "2026-11-29T12:00:00Z")
    }

    @Test func specChangedDetails() throws {
        let issuer = try single(plan([token(x, issuer: "ext")], [recorded(x)]))
        #expect(issuer.detail == "issuer local → ext")
        #expect(issuer.issuer == "ext")

        let exec = try single(plan([token(x, scopes: ["write", "read"], issuer: "ext")], [recorded(x, issuer: "ext")]))
        #expect(exec.action == .rotate)
        #expect(exec.detail == "scopes [read] → [read, write] (the issuer cannot change scopes in place)")

        let builtin = try single(plan([token(x, scopes: ["write", "read"])], [recorded(x)]))
        #expect(builtin.action == .update)
        #expect(builtin.version == 1)
        #expect(builtin.newVersion == nil)
        #expect(builtin.detail == "scopes [read] → [read, write]")

        let shortened = try single(plan([token(x, lifespan: "30d", every: "20d")], [recorded(x)]))
        #expect(shortened.detail == "lifespan shortened to 30d: v1 would outlive it")
        #expect(shortened.facts["lifespan"] == "30d")

        let neverToFinite = try single(plan([token(x)], [recorded(x, versions: [version(1, lifespan: nil)])]))
        #expect(neverToFinite.detail == "lifespan 90d replaces never: v1 does not expire")
    }

    @Test func overlapEnded() throws {
        let successorIssued = timestamp("2026-11-28T04:10:00Z")
        let result = plan([token(x)], [recorded(x, versions: [
            version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: ago("1h")), version(2, issuedAt: successorIssued),
        ])])
        let change = try single(result)
        #expect(change.version == 1)
        #expect(change.detail == "successor v2 active since 2026-11-28 04:10 UTC")
        #expect(change.facts == ["retireAfter": ago("1h").description])
    }

    @Test func retiringVersionSetsNextDue() {
        let result = plan([token(x)], [recorded(x, versions: [
            version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: fromNow("3h")), version(2, issuedAt: ago("2d")),
        ])])
        #expect(result.changes.isEmpty)
        #expect(result.nextDueAt == fromNow("3h"))
    }

    @Test func nextDueIsTheEarliestOverAllTokens() {
        let result = plan([token("payments/a"), token("payments/b")], [
            recorded("payments/a", versions: [version(1, issuedAt: ago("10d"))]),
            recorded("payments/b", versions: [version(1, issuedAt: ago("20d"))]),
        ])
        let dueB = Schedule.rotationDue(id: tid("payments/b"), issuedAt: ago("20d"), settings: Schedule.Settings(token("payments/b")))
        #expect(result.nextDueAt == dueB)
    }

    @Test func removedFromManifests() {
        let result = plan([], [recorded(x, versions: [version(1, status: .revoked), version(2, status: .retiring, retireAfter: fromNow("1h")),
                                                      version(3)])])
        #expect(result.changes.map(\.version) == [2, 3])
        #expect(result.changes.allSatisfy { $0.detail == "no longer in the manifests; revoke and remove from every store" })
        #expect(result.counts == ["retire": 2])
    }

    @Test func deliveryDetails() {
        let result = plan([token(x, deliverTo: [("vault", "payments/x"), ("file", "ci.env"), ("file", "b.env")])],
                          [recorded(x, versions: [version(2, deliveries: [("vault", "payments/x", "fp-1"), ("old", "legacy/x", "fp-1")])])],
                          observed: Observation(storeContents: [StoreKey(store: "vault", key: "payments/x"): "fp-other"]))
        // Ordered by reason: DeliveryDrifted, DeliveryMissing, DeliveryRemoved; stores in deliverTo order.
        #expect(result.changes.map(\.detail) == [
            "vault:payments/x holds something else", "not in file:ci.env, file:b.env", "remove from old:legacy/x (no longer in deliverTo)",
        ])
        #expect(result.changes.map { $0.stores.map(\.description) } == [["vault:payments/x"], ["file:ci.env", "file:b.env"], ["old:legacy/x"]])
        #expect(result.changes.allSatisfy { $0.version == 2 && $0.newVersion == nil })
    }

    @Test func missingAtIssuerDetails() throws {
        let gone = try single(plan([token(x)], [recorded(x)], observed: Observation(inventories: ["local": []])))
        #expect(gone.detail == "v1 (id payments.x-cred-1) is gone from the issuer")
        #expect(gone.version == 1)
        #expect(gone.newVersion == 2)
        #expect(gone.facts["credentialID"] == "payments.x-cred-1")

        let revoked = try single(plan([token(x)], [recorded(x)],
                                      observed: Observation(inventories: ["local": [observed("local", credentialID(x, 1), revoked: true)]])))
        #expect(revoked.detail == "v1 (id payments.x-cred-1) is revoked at the issuer")
    }

    @Test func ghostReportedIsNoChange() throws {
        let ghost = observed("local", "1042", hint: "tkc_…a91f")
        let result = plan([token(x)], [recorded(x)], observed: Observation(inventories: ["local": [observed("local", credentialID(x, 1)), ghost]]))
        let change = try single(result)
        #expect(change.token == nil)
        #expect(change.issuer == "local")
        #expect(change.ghost == ghost)
        #expect(!change.retireGhost)
        #expect(change.detail == "valid at the issuer but not recorded in this state (made by hand or by another state, or recorded in a state since lost or restored from an older backup: tokenctl state rebuild); reported only (issuer ghosts: report)")
        #expect(change.facts == ["credentialID": "1042"])
        #expect(!result.hasChanges)
        #expect(result.counts == ["ghostReported": 1])
    }

    @Test func ghostRetiredIsAChange() throws {
        let result = plan([token(x, issuer: "strict")], [recorded(x, issuer: "strict")],
                          observed: Observation(inventories: ["strict": [observed("strict", credentialID(x, 1)), observed("strict", "1042")]]))
        let change = try single(result)
        #expect(change.retireGhost)
        #expect(change.detail == "valid at the issuer but not recorded in this state (made by hand or by another state, or recorded in a state since lost or restored from an older backup: tokenctl state rebuild); will be revoked (issuer ghosts: retire)")
        #expect(result.hasChanges)
        #expect(result.counts == ["ghostRetired": 1])
    }

    @Test func ghostAtAnIssuerNoLongerInTheManifestsIsReported() throws {
        let change = try single(plan([], [], observed: Observation(inventories: ["gone": [observed("gone", "5")]])))
        #expect(change.action == .ghost)
        #expect(!change.retireGhost)
    }
}

@Suite struct GhostOrderTests {
    @Test func ghostsAreGroupedByIssuerThenId() {
        let observation = Observation(inventories: [
            "strict": [observed("strict", "0001"), observed("strict", "0003")],
            "local": [observed("local", "0002"), observed("local", "0000")],
        ])
        let plan = Planner.plan(desired: ManifestSet(tokens: [], issuers: fixtureIssuers), recorded: RecordedState(), observed: observation, now: now)
        #expect(plan.changes.map { "\($0.issuer)/\($0.ghost?.credentialID ?? "")" } == ["local/0000", "local/0002", "strict/0001", "strict/0003"])
        #expect(plan.changes.map(\.retireGhost) == [false, false, true, true])
    }
}
