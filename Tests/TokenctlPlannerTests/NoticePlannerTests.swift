import Testing
import TokenctlModel
import TokenctlPlanner

/// Which notices are due: lead times, thresholds, selectors, keys that name one occurrence, and the next wake-up.
@Suite struct NoticePlannerTests {
    /// A permanent token whose exception ends at `ends`.
    func permanent(_ id: String, ends: Timestamp) -> Token {
        var token = token(id, lifespan: "never", every: nil)
        token.exception = Token.Exception(reason: "legacy", approvedBy: "sec", ticket: "SEC-1", expires: ends, expiresText: "\(ends)", location: loc)
        return token
    }

    func notifier(_ name: String = "security", events: Notifier.Events, selector: Notifier.Selector = Notifier.Selector()) -> Notifier {
        Notifier(metadata: ResourceMetadata(name: name, location: loc), url: .environment("HOOK"), selector: selector, events: events)
    }

    func desired(_ tokens: [Token], _ notifiers: [Notifier]) -> ManifestSet {
        var set = manifests(tokens)
        set.notifiers = notifiers
        return set
    }

    func rows(_ tokens: [RecordedToken], lastUsed: [String: Timestamp] = [:], at moment: Timestamp = now) -> [TokenStatus.Row] {
        TokenStatus.rows(state(tokens), lastUsed: lastUsed, now: moment)
    }

    let leads = Notifier.Events(expiring: ["14d", "3d", "1d"].map(duration))

    @Test func anExceptionsEndIsNoticedOncePerLeadTimeReachedTheShortestFirst() {
        let ends = fromNow("2d")
        let set = desired([permanent("payments/legacy", ends: ends)], [notifier(events: leads)])
        let facts = NoticeFacts(rows: rows([recorded("payments/legacy", lifespan: "never", every: nil, versions: [version(1, lifespan: nil)])]))
        let due = NoticePlanner.due(desired: set, facts: facts, now: now)
        // 14d and 3d are both reached: one notice, for 3d, never a burst of every lead time missed.
        #expect(due.map(\.key) == ["expiring/payments/legacy/\(ends.secondsSinceEpoch)/3d"])
        #expect(due.first?.owner == "team-payments" && due.first?.at == ends && due.first?.leadTime == duration("3d"))
        #expect(due.first?.reason.contains("permanent-token exception") == true)
        #expect(NoticePlanner.due(desired: set, facts: facts, now: fromNow("1d12h")).map(\.key).first?.hasSuffix("/1d") == true)
        #expect(NoticePlanner.due(desired: set, facts: facts, now: ago("13d")).isEmpty, "no lead time reached yet")
        #expect(NoticePlanner.nextDue(desired: set, facts: facts, now: ago("13d")) == Timestamp(secondsSinceEpoch: ends.secondsSinceEpoch - duration("14d").seconds))
        // A renewed exception is a new occurrence: new keys.
        let renewed = desired([permanent("payments/legacy", ends: fromNow("2d1h"))], [notifier(events: leads)])
        #expect(NoticePlanner.due(desired: renewed, facts: facts, now: now).map(\.key) != due.map(\.key))
    }

    @Test func credentialsThatARotationReplacesAreNotNoticedButHeldOnesAre() {
        let tokens = [token("payments/rotating", lifespan: "30d", every: "20d")]
        let recordedTokens = [recorded("payments/rotating", lifespan: "30d", every: "20d", versions: [version(1, issuedAt: ago("28d"), lifespan: "30d")])]
        let set = desired(tokens, [notifier(events: leads)])
        #expect(NoticePlanner.due(desired: set, facts: NoticeFacts(rows: rows(recordedTokens)), now: now).isEmpty)
        let held = NoticeFacts(rows: rows(recordedTokens), held: [tid("payments/rotating"): ["scope not allowed"]])
        #expect(NoticePlanner.due(desired: set, facts: held, now: now).map(\.event) == [.expiring])
    }

    @Test func selectorsChooseByOwnerAndNamespaceAndGhostsGoOnlyToUnselectiveNotifiers() {
        let ends = fromNow("2d")
        let notifiers = [
            notifier("all", events: Notifier.Events(expiring: leads.expiring, ghost: true)),
            notifier("payments", events: Notifier.Events(expiring: leads.expiring, ghost: true),
                     selector: Notifier.Selector(owners: [GlobPattern("team-pay*")])),
            notifier("platform", events: leads, selector: Notifier.Selector(namespaces: [GlobPattern("platform")])),
        ]
        let set = desired([permanent("payments/legacy", ends: ends)], notifiers)
        let facts = NoticeFacts(rows: rows([recorded("payments/legacy", lifespan: "never", every: nil, versions: [version(1, lifespan: nil)])]),
                                ghosts: [observed("local", "tkc-ghost-1")])
        let due = NoticePlanner.due(desired: set, facts: facts, now: now)
        #expect(due.map { "\($0.notifier) \($0.event.rawValue)" } == ["all expiring", "all ghost", "payments expiring"])
        #expect(due.first { $0.event == .ghost }?.key == "ghost/local/tkc-ghost-1")
        // Without inventories, ghosts are unknown, not absent.
        #expect(!NoticePlanner.due(desired: set, facts: NoticeFacts(rows: facts.rows), now: now).contains { $0.event == .ghost })
    }

    @Test func failuresUnusedTokensAndPolicyViolationsPassTheirThresholds() {
        let events = Notifier.Events(failingAfter: duration("1h"), unusedAfter: duration("30d"), policyViolation: true)
        let tokens = [token("payments/a"), token("payments/b")]
        let set = desired(tokens, [notifier(events: events)])
        let recordedTokens = [recorded("payments/a", versions: [version(1, issuedAt: ago("40d"))]),
                              recorded("payments/b", versions: [version(1, issuedAt: ago("40d"))])]
        let facts = NoticeFacts(rows: rows(recordedTokens, lastUsed: [credentialID("payments/b", 1): ago("2d")]),
                                held: [tid("payments/b"): ["lifespan 400d is longer than 365d"]],
                                failing: [.init(token: tid("payments/a"), action: "rotate", since: ago("2h"), error: "issuer unreachable"),
                                          .init(token: tid("payments/b"), action: "retire", since: ago("10m"), error: "store refused")])
        let due = NoticePlanner.due(desired: set, facts: facts, now: now)
        #expect(due.map { "\($0.event.rawValue) \($0.token?.description ?? "-")" } == [
            "failing payments/a", "policyViolation payments/b", "unused payments/a",
        ])
        #expect(due[0].key == "failing/payments/a/rotate/\(ago("2h").secondsSinceEpoch)" && due[0].reason.contains("issuer unreachable"))
        #expect(due[2].reason.contains("has no recorded use since it was issued"))
        // The ten-minute failure is due 50 minutes from now: the controller wakes for it.
        #expect(NoticePlanner.nextDue(desired: set, facts: facts, now: now) == fromNow("50m"))
    }

    @Test func tokensNoLongerInTheManifestsAndNotifiersWithoutTheEventGetNothing() {
        let set = desired([], [notifier(events: Notifier.Events(unusedAfter: duration("1d")))])
        let facts = NoticeFacts(rows: rows([recorded("payments/gone", versions: [version(1, issuedAt: ago("40d"))])]))
        #expect(NoticePlanner.due(desired: set, facts: facts, now: now).isEmpty)
        let quiet = desired([permanent("payments/legacy", ends: fromNow("1h"))], [notifier(events: Notifier.Events(ghost: true))])
        #expect(NoticePlanner.due(desired: quiet, facts: NoticeFacts(rows: rows([recorded("payments/legacy", lifespan: "never", every: nil,
                                                                                          versions: [version(1, lifespan: nil)])])), now: now).isEmpty)
    }
}
