import Testing
import TokenctlModel
import TokenctlPlanner

/// One row of the planner table: desired, recorded and observed state in, the expected changes out (in order).
struct PlanCase: Sendable, CustomTestStringConvertible {
    var name: String
    var desired: [Token]
    var recorded: [RecordedToken]
    var observation: Observation?
    var expected: [Row]

    init(_ name: String, desired: [Token], recorded: [RecordedToken] = [], observation: Observation? = nil, expected: [Row]) {
        self.name = name
        self.desired = desired
        self.recorded = recorded
        self.observation = observation
        self.expected = expected
    }

    var testDescription: String { name }
}

private let x = "payments/x"
private let vaultX = StoreKey(store: "vault", key: "payments/x")

/// An observation of the `local` issuer holding `credentials` (and no store contents).
private func inventory(_ credentials: [ObservedCredential], at issuer: String = "local") -> Observation {
    Observation(inventories: [issuer: credentials])
}

let planCases: [PlanCase] = [
    // No-op.
    PlanCase("nothing to do", desired: [token(x)], recorded: [recorded(x)], expected: []),
    PlanCase("nothing to do, scopes in another order", desired: [token(x, scopes: ["write", "read"])],
             recorded: [recorded(x, versions: [version(1, scopes: ["read", "write"])])], expected: []),
    PlanCase("nothing to do, lifespan lengthened", desired: [token(x, lifespan: "180d")], recorded: [recorded(x)], expected: []),
    PlanCase("nothing to do, store holds what was delivered",
             desired: [token(x)], recorded: [recorded(x)],
             observation: Observation(inventories: ["local": [observed("local", credentialID(x, 1))]], storeContents: [vaultX: "fp-1"]),
             expected: []),

    // issue
    PlanCase("NotIssued: no state", desired: [token("payments/orders-api-ci")],
             expected: [Row(.issue, "payments/orders-api-ci", .notIssued)]),
    PlanCase("NotIssued: only a pending version", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, status: .pending)])], expected: [Row(.issue, x, .notIssued)]),
    PlanCase("NotIssued: every version revoked", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, status: .revoked)])], expected: [Row(.issue, x, .notIssued)]),
    PlanCase("MissingAtIssuer: gone from the inventory", desired: [token(x)], recorded: [recorded(x)],
             observation: inventory([]), expected: [Row(.issue, x, .missingAtIssuer)]),
    PlanCase("MissingAtIssuer: revoked at the issuer", desired: [token(x)], recorded: [recorded(x)],
             observation: inventory([observed("local", credentialID(x, 1), revoked: true)]),
             expected: [Row(.issue, x, .missingAtIssuer)]),

    // rotate
    PlanCase("RotationDue: age 31d, every 30d", desired: [token(x)],
             recorded: [recorded(x, versions: [version(3, issuedAt: ago("31d"))])], expected: [Row(.rotate, x, .rotationDue)]),
    PlanCase("not due: age 28d, every 30d (spread is at most 1.5d)", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("28d"))])], expected: []),
    PlanCase("RotationDue: default every is 2/3 of the lifespan", desired: [token(x, every: nil)],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("61d"))])], expected: [Row(.rotate, x, .rotationDue)]),
    PlanCase("ExpiresSoon: credential expires within the overlap before rotation is due", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("5d"), expiresAt: fromNow("12h"))])],
             expected: [Row(.rotate, x, .expiresSoon)]),
    PlanCase("Expired", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("91d"))])], expected: [Row(.rotate, x, .expired)]),
    PlanCase("SpecChanged: issuer changed", desired: [token(x, issuer: "ext")], recorded: [recorded(x, issuer: "local")],
             expected: [Row(.rotate, x, .specChanged)]),
    PlanCase("SpecChanged: scopes changed on an exec issuer rotate", desired: [token(x, scopes: ["read", "write"], issuer: "ext")],
             recorded: [recorded(x, issuer: "ext")], expected: [Row(.rotate, x, .specChanged)]),
    PlanCase("SpecChanged: lifespan shortened", desired: [token(x, lifespan: "30d", every: "20d")], recorded: [recorded(x)],
             expected: [Row(.rotate, x, .specChanged)]),
    PlanCase("SpecChanged: lifespan never replaced by 90d", desired: [token(x)],
             recorded: [recorded(x, lifespan: "never", every: nil, versions: [version(1, lifespan: nil)])],
             expected: [Row(.rotate, x, .specChanged)]),

    // update
    PlanCase("SpecChanged: scopes changed on a builtin issuer update", desired: [token(x, scopes: ["read", "write"])],
             recorded: [recorded(x)], expected: [Row(.update, x, .specChanged)]),
    PlanCase("SpecChanged: scopes changed on a postgres issuer update", desired: [token(x, scopes: [], issuer: "pg")],
             recorded: [recorded(x, issuer: "pg")], expected: [Row(.update, x, .specChanged)]),

    // retire
    PlanCase("OverlapEnded", desired: [token(x)],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: ago("1h")), version(2, issuedAt: ago("2d")),
             ])],
             expected: [Row(.retire, x, .overlapEnded)]),
    PlanCase("overlap still running", desired: [token(x)],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: fromNow("1h")), version(2, issuedAt: ago("2d")),
             ])],
             expected: []),
    PlanCase("RemovedFromManifests: every unrevoked version", desired: [],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("70d"), status: .revoked),
                 version(2, issuedAt: ago("40d"), status: .retiring, retireAfter: fromNow("1h")),
                 version(3, issuedAt: ago("10d")),
             ])],
             expected: [Row(.retire, x, .removedFromManifests), Row(.retire, x, .removedFromManifests)]),

    // redeliver
    PlanCase("DeliveryMissing: new target", desired: [token(x, deliverTo: [("vault", "payments/x"), ("file", "ci.env")])],
             recorded: [recorded(x)], expected: [Row(.redeliver, x, .deliveryMissing)]),
    PlanCase("DeliveryMissing: store holds nothing, another still holds it",
             desired: [token(x, deliverTo: [("vault", "payments/x"), ("file", "ci.env")])],
             recorded: [recorded(x, versions: [version(1, deliveries: [("vault", "payments/x", "fp-1"), ("file", "ci.env", "fp-1")])])],
             observation: Observation(storeContents: [vaultX: String?.none, StoreKey(store: "file", key: "ci.env"): "fp-1"]),
             expected: [Row(.redeliver, x, .deliveryMissing)]),
    PlanCase("DeliveryDrifted: store holds something else, another still holds it",
             desired: [token(x, deliverTo: [("vault", "payments/x"), ("file", "ci.env")])],
             recorded: [recorded(x, versions: [version(1, deliveries: [("vault", "payments/x", "fp-1"), ("file", "ci.env", "fp-1")])])],
             observation: Observation(storeContents: [vaultX: "fp-other", StoreKey(store: "file", key: "ci.env"): "fp-1"]),
             expected: [Row(.redeliver, x, .deliveryDrifted)]),
    PlanCase("DeliveryLost: the only store holds nothing", desired: [token(x)], recorded: [recorded(x)],
             observation: Observation(storeContents: [vaultX: String?.none]), expected: [Row(.rotate, x, .deliveryLost)]),
    PlanCase("DeliveryLost: every store holds something else", desired: [token(x)], recorded: [recorded(x)],
             observation: Observation(storeContents: [vaultX: "fp-other"]), expected: [Row(.rotate, x, .deliveryLost)]),
    PlanCase("no DeliveryLost when a store was not observed", desired: [token(x)], recorded: [recorded(x)],
             observation: Observation(), expected: []),
    PlanCase("DeliveryRemoved", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, deliveries: [("vault", "payments/x", "fp-1"), ("old", "legacy/x", "fp-1")])])],
             expected: [Row(.undeliver, x, .deliveryRemoved)]),
    PlanCase("all three delivery changes, ordered by reason",
             desired: [token(x, deliverTo: [("vault", "payments/x"), ("file", "ci.env")])],
             recorded: [recorded(x, versions: [version(1, deliveries: [("vault", "payments/x", "fp-1"), ("old", "legacy/x", "fp-1")])])],
             observation: Observation(storeContents: [vaultX: "fp-other"]),
             expected: [Row(.redeliver, x, .deliveryDrifted), Row(.redeliver, x, .deliveryMissing), Row(.undeliver, x, .deliveryRemoved)]),

    // ghost
    PlanCase("Unmanaged: reported (ghosts: report)", desired: [token(x)], recorded: [recorded(x)],
             observation: inventory([observed("local", credentialID(x, 1)), observed("local", "1042", hint: "tkc_…a91f")]),
             expected: [Row(.ghost, nil, .unmanaged)]),
    PlanCase("Unmanaged: retired (ghosts: retire)", desired: [token(x, issuer: "strict")], recorded: [recorded(x, issuer: "strict")],
             observation: inventory([observed("strict", "1042"), observed("strict", credentialID(x, 1))], at: "strict"),
             expected: [Row(.ghost, nil, .unmanaged)]),
    PlanCase("revoked credential at the issuer is no ghost", desired: [token(x)], recorded: [recorded(x)],
             observation: inventory([observed("local", credentialID(x, 1)), observed("local", "1042", revoked: true)]),
             expected: []),
    PlanCase("retiring version still at the issuer is no ghost", desired: [token(x)],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: fromNow("1h")), version(2, issuedAt: ago("2d")),
             ])],
             observation: inventory([observed("local", credentialID(x, 1)), observed("local", credentialID(x, 2))]),
             expected: []),

    PlanCase("RevokeIncomplete: revoked in state, still valid at the issuer", desired: [token(x)],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("40d"), status: .revoked), version(2, issuedAt: ago("2d"))])],
             observation: inventory([observed("local", credentialID(x, 1)), observed("local", credentialID(x, 2))]),
             expected: [Row(.retire, x, .revokeIncomplete)]),
    PlanCase("OverlapEnded: a retiring version without an end of overlap goes at once", desired: [token(x)],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("40d"), status: .retiring, retireAfter: nil), version(2, issuedAt: ago("2d")),
             ])],
             expected: [Row(.retire, x, .overlapEnded)]),
    PlanCase("a due rotation takes a scope change along: no separate update", desired: [token(x, scopes: ["read", "write"])],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("31d"))])], expected: [Row(.rotate, x, .rotationDue)]),
    PlanCase("ghosts ordered by issuer, then id", desired: [token(x), token("payments/y", issuer: "strict")],
             recorded: [recorded(x), recorded("payments/y", issuer: "strict")],
             observation: Observation(inventories: [
                 "strict": [observed("strict", credentialID("payments/y", 1)), observed("strict", "0001")],
                 "local": [observed("local", credentialID(x, 1)), observed("local", "0002")],
             ]),
             expected: [Row(.ghost, nil, .unmanaged), Row(.ghost, nil, .unmanaged)]),

    // Rotation windows (now is Monday 12:00 UTC).
    PlanCase("window: due and inside the window rotates", desired: [token(x, window: "Mon-Fri 09:00-17:00 UTC")],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("33d"))])], expected: [Row(.rotate, x, .rotationDue)]),
    PlanCase("window: due an hour ago, outside the window waits", desired: [token(x, window: "Sat,Sun 09:00-17:00 UTC")],
             recorded: [recorded(x, versions: [version(1, issuedAt: issuedDue(x, every: "30d", since: "1h"))])], expected: []),
    PlanCase("window: due 10 days ago, outside the window still waits", desired: [token(x, window: "Sat,Sun 09:00-17:00 UTC")],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("40d"))])], expected: []),
    PlanCase("window: ExpiresSoon ignores the window", desired: [token(x, window: "Sat,Sun 09:00-17:00 UTC")],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("5d"), expiresAt: fromNow("12h"))])],
             expected: [Row(.rotate, x, .expiresSoon)]),

    // Precedence and ordering.
    PlanCase("Expired wins over RotationDue and scope changes", desired: [token(x, scopes: ["admin"])],
             recorded: [recorded(x, versions: [version(1, issuedAt: ago("100d"))])], expected: [Row(.rotate, x, .expired)]),
    PlanCase("update then redeliver for the same token", desired: [token(x, scopes: ["admin"], deliverTo: [("file", "ci.env")])],
             recorded: [recorded(x)], expected: [Row(.update, x, .specChanged), Row(.redeliver, x, .deliveryMissing),
                                                 Row(.undeliver, x, .deliveryRemoved)]),
    PlanCase("a rotation without overlap lists the retirement of the version it replaces", desired: [token(x, overlap: "0s")],
             recorded: [recorded(x, versions: [version(3, issuedAt: ago("31d"))])],
             expected: [Row(.rotate, x, .rotationDue), Row(.retire, x, .overlapEnded)]),
    PlanCase("within a token, by action: rotate before retire", desired: [token(x)],
             recorded: [recorded(x, versions: [
                 version(1, issuedAt: ago("70d"), status: .retiring, retireAfter: ago("30d")), version(2, issuedAt: ago("31d")),
             ])],
             expected: [Row(.rotate, x, .rotationDue), Row(.retire, x, .overlapEnded)]),
    PlanCase("by token id whether desired or removed, ghosts last",
             desired: [token("payments/b"), token("ops/z"), token("payments/a", scopes: ["admin"])],
             recorded: [recorded("payments/a"), recorded("aaa/old"), recorded("zzz/old"), recorded("ops/z")],
             observation: Observation(inventories: [
                 "strict": [observed("strict", "7")],
                 "local": [observed("local", "9"), observed("local", credentialID("payments/a", 1)), observed("local", "10"),
                           observed("local", credentialID("ops/z", 1))],
             ]),
             expected: [
                 Row(.retire, "aaa/old", .removedFromManifests),
                 Row(.update, "payments/a", .specChanged),
                 Row(.issue, "payments/b", .notIssued),
                 Row(.retire, "zzz/old", .removedFromManifests),
                 Row(.ghost, nil, .unmanaged), Row(.ghost, nil, .unmanaged), Row(.ghost, nil, .unmanaged),
             ]),
]

@Suite struct PlanTableTests {
    @Test(arguments: planCases)
    func plans(_ planCase: PlanCase) {
        let plan = Planner.plan(desired: manifests(planCase.desired), recorded: state(planCase.recorded),
                                observed: planCase.observation, now: now)
        #expect(rows(plan) == planCase.expected)
        if planCase.expected.isEmpty { #expect(!plan.hasChanges) }
        if planCase.expected.contains(where: { $0.action != .ghost }) { #expect(plan.hasChanges) }
        #expect(plan.refreshed == (planCase.observation != nil))
        #expect(plan.stateSerial == 7)
        #expect(plan.createdAt == now)
    }

    @Test func everyActionAndReasonIsCovered() {
        let expected = planCases.flatMap(\.expected)
        #expect(Set(expected.map(\.action)) == Set(PlanAction.allCases))
        // Requested and Compromised come only from an operator's request (RequestedRotationTests), never from the planner.
        #expect(Set(expected.map(\.reason)) == Set(PlanReason.allCases).subtracting([.requested, .compromised]))
    }
}

@Suite struct PolicyHoldPlanningTests {
    @Test func heldTokensGetNoNewCredentialAndEveryOtherChangeStays() {
        let due = recorded("payments/due", versions: [version(1, issuedAt: ago("31d"))])
        let plan = Planner.plan(desired: manifests([token("payments/due"), token("payments/new"), token("payments/fine")]),
                                recorded: state([due]), observed: nil, now: now,
                                held: [tid("payments/due"): ["too long"], tid("payments/new"): ["scope not allowed"]])
        #expect(plan.changes.map { "\($0.action) \($0.token?.description ?? "")" } == ["issue payments/fine"])
        #expect(plan.held.map(\.token) == [tid("payments/due"), tid("payments/new")])
        #expect(plan.held.map(\.withheld) == [[.rotate], [.issue]])
        #expect(plan.held.first?.violations == ["too long"])
        #expect(PlanRenderer.summary(plan) == "Plan: 1 to issue, 2 held by policy.")
    }
}

@Suite struct SupersededRetirementTests {
    @Test func theRetirementAfterARotationWithoutOverlapWaitsForItsSuccessor() {
        let plan = Planner.plan(desired: manifests([token("payments/x", overlap: "0s")]),
                                recorded: state([recorded("payments/x", versions: [version(3, issuedAt: ago("31d"))])]), observed: nil, now: now)
        let retirement = plan.changes.first { $0.action == .retire }
        #expect(retirement?.version == 3)
        #expect(retirement?.followsRotation == true, "the engine retires it only once the rotation made v4 active")
        #expect(retirement?.detail == "replaced by v4 without overlap: retired once v4 is active")
        #expect(plan.counts["rotate"] == 1 && plan.counts["retire"] == 1, "the counts are what apply will do")
    }

    @Test func aHeldTokenKeepsItsCurrentVersion() {
        let plan = Planner.plan(desired: manifests([token("payments/x", overlap: "0s")]),
                                recorded: state([recorded("payments/x", versions: [version(3, issuedAt: ago("31d"))])]), observed: nil, now: now,
                                held: [tid("payments/x"): ["exception expired"]])
        #expect(plan.changes.isEmpty, "no rotation, so no retirement of the version it would replace")
        #expect(plan.held.map(\.withheld) == [[.rotate]])
    }

    @Test func aRequestedRotationWithoutOverlapListsTheRetirementToo() {
        let request = RequestedRotation(tokens: [tid("payments/x")], reason: "INC-2", compromised: false)
        let plan = request.plan(desired: manifests([token("payments/x", overlap: "0s")]),
                                recorded: state([recorded("payments/x", versions: [version(2, issuedAt: ago("1d"))])]), now: now)
        #expect(plan.changes.map(\.action) == [.rotate, .retire])
        #expect(plan.changes.last?.followsRotation == true)
    }
}

@Suite struct RequestedRotationTests {
    static let x = "payments/x", y = "payments/y"

    @Test func rotatesOnlyWhatWasAskedForWhateverTheSchedule() {
        let request = RequestedRotation(tokens: [tid(Self.x)], reason: "INC-1", compromised: false)
        let plan = request.plan(desired: manifests([token(Self.x), token(Self.y)]),
                                recorded: state([recorded(Self.x, versions: [version(2, issuedAt: ago("1d"))]),
                                                 recorded(Self.y, versions: [version(1, issuedAt: ago("40d"))])]), now: now)
        #expect(plan.changes.map(\.action) == [.rotate])
        #expect(plan.changes.first?.reason == .requested && plan.changes.first?.version == 2 && plan.changes.first?.newVersion == 3)
        #expect(plan.changes.first?.detail.hasPrefix("requested: INC-1; the current version overlaps its successor") == true)
    }

    @Test func aCompromisedCredentialIsRetiredInTheSamePlanEvenWhenPolicyHoldsItsSuccessor() {
        let request = RequestedRotation(tokens: [tid(Self.x), tid(Self.y)], reason: "leak", compromised: true)
        let recordedState = state([recorded(Self.x, versions: [version(1, issuedAt: ago("1d"))]),
                                   recorded(Self.y, versions: [version(1, issuedAt: ago("1d"))])])
        let plan = request.plan(desired: manifests([token(Self.x), token(Self.y)]), recorded: recordedState, now: now,
                                held: [tid(Self.y): ["scope not allowed"]])
        #expect(plan.changes.map { "\($0.action) \($0.token?.description ?? "")" } == ["rotate payments/x", "retire payments/x", "retire payments/y"])
        #expect(plan.changes.filter { $0.action == .retire }.allSatisfy { $0.reason == .compromised && $0.version == 1 })
        #expect(plan.held.map(\.token) == [tid(Self.y)])
    }

    @Test func compromisedRevokesEveryVersionStillValidAtTheIssuerThatMadeIt() {
        let request = RequestedRotation(tokens: [tid(Self.x)], reason: "leak", compromised: true)
        let record = recorded(Self.x, issuer: "strict", versions: [version(1, status: .retiring), version(2, issuedAt: ago("1h"))])
        let plan = request.plan(desired: manifests([token(Self.x)]), recorded: state([record]), now: now)
        let retired = plan.changes.filter { $0.action == .retire }
        #expect(retired.map(\.version) == [1, 2], "the overlapping v1 may have leaked too")
        #expect(retired.allSatisfy { $0.issuer == "strict" }, "revoked where it was issued, whatever the manifests say now")
    }

    @Test func unknownOrUnissuedTokensAreProblemsNotSilentSkips() {
        let request = RequestedRotation(tokens: [tid(Self.x), tid("payments/nope")], reason: "r", compromised: false)
        let problems = request.problems(desired: manifests([token(Self.x)]), recorded: state([]))
        #expect(problems == ["token payments/nope is not in the manifests; only managed tokens can be rotated",
                             "token payments/x has no active credential yet; tokenctl apply issues it"])
    }
}
