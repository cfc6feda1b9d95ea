import Testing
import TokenctlModel
import TokenctlPlanner

/// Creation-rate limits: the first new tokens within the limit proceed, the excess is held with the reason, rotations
/// always proceed and count.
@Suite struct RateLimitTests {
    func limited(_ tokens: [Token], _ limit: IssueRateLimit) -> ManifestSet {
        var set = manifests(tokens)
        set.policies = [Policy(metadata: ResourceMetadata(name: "default", location: loc), maxIssued: limit)]
        return set
    }

    @Test func theExcessOfNewTokensIsHeldAndTheRestProceed() {
        let tokens = (1...5).map { token("payments/new-\($0)") } + [token("payments/old")]
        // One credential issued 30 minutes ago already counts; the rotation due now counts too, and is never held.
        let old = recorded("payments/old", versions: [version(1, issuedAt: ago("31d"))])
        let recent = recorded("payments/recent", versions: [version(1, issuedAt: ago("30m"))])
        let set = limited(tokens + [token("payments/recent")], IssueRateLimit(count: 4, per: duration("1h")))
        let plan = Planner.plan(desired: set, recorded: state([old, recent]), observed: nil, now: now)
        #expect(plan.changes.filter { $0.action == .issue }.map { $0.token?.name } == ["new-1", "new-2"])
        #expect(plan.changes.contains { $0.action == .rotate && $0.token?.name == "old" })
        #expect(plan.held.map(\.token.name) == ["new-3", "new-4", "new-5"])
        let hit = plan.held.first?.rateLimit
        #expect(hit?.subject == "team-payments" && hit?.by == "owner" && hit?.limit == "4 per 1h by owner" && hit?.policy == "default")
        #expect(plan.held.first?.violations.first?.contains("may get 4 new credentials per 1h and has had 4") == true)
        #expect(plan.held.first?.withheld == [.issue])
    }

    @Test func aTokenTheStateAlreadyHoldsIsRepairedNotHeldAndTheHeldWakeThePlanWhenRoomReopens() {
        // The state holds `repair` without an active credential: issuing it again is a repair, never held.
        let repair = recorded("payments/repair", versions: [version(1, issuedAt: ago("20m"), status: .revoked)])
        let set = limited([token("payments/repair"), token("payments/new")], IssueRateLimit(count: 1, per: duration("1h")))
        let plan = Planner.plan(desired: set, recorded: state([repair]), observed: nil, now: now)
        #expect(plan.changes.contains { $0.action == .issue && $0.token?.name == "repair" })
        #expect(plan.held.map(\.token.name) == ["new"])
        // The version issued 20 minutes ago leaves the window in 40 minutes: the controller wakes then.
        #expect(plan.nextDueAt == fromNow("40m"))
    }

    @Test func issuesOlderThanThePeriodDoNotCountAndLimitsCanBeLiftedOrCountedPerIssuer() {
        let tokens = (1...3).map { token("payments/new-\($0)") }
        let earlier = recorded("payments/earlier", versions: [version(1, issuedAt: ago("2h"))])
        let set = limited(tokens + [token("payments/earlier")], IssueRateLimit(count: 3, per: duration("1h"), by: .issuer))
        let plan = Planner.plan(desired: set, recorded: state([earlier]), observed: nil, now: now)
        #expect(plan.held.isEmpty && plan.changes.filter { $0.action == .issue }.count == 3)
        let tight = limited(tokens, IssueRateLimit(count: 1, per: duration("1h"), by: .issuer))
        let held = Planner.plan(desired: tight, recorded: state([]), observed: nil, now: now)
        #expect(held.held.count == 2 && held.held.first?.rateLimit?.subject == "local")
        let lifted = Planner.plan(desired: tight, recorded: state([]), observed: nil, now: now, enforceRateLimits: false)
        #expect(lifted.held.isEmpty && lifted.changes.filter { $0.action == .issue }.count == 3)
    }

    @Test func aRateLimitHitIsNoticedOncePerPeriodAndOwner() {
        var set = limited((1...3).map { token("payments/new-\($0)") }, IssueRateLimit(count: 1, per: duration("1h")))
        set.notifiers = [Notifier(metadata: ResourceMetadata(name: "security", location: loc), url: .environment("HOOK"),
                                  events: Notifier.Events(rateLimited: true))]
        let plan = Planner.plan(desired: set, recorded: state([]), observed: nil, now: now)
        let facts = NoticeFacts(rows: [], rateLimited: plan.held)
        let due = NoticePlanner.due(desired: set, facts: facts, now: now)
        #expect(due.count == 1 && due.first?.event == .rateLimited && due.first?.owner == "team-payments")
        #expect(due.first?.reason.contains("2 new tokens held (payments/new-2, payments/new-3)") == true)
        // Later in the same period the key is the same (sent once); in the next period it is new.
        #expect(NoticePlanner.due(desired: set, facts: facts, now: now + duration("10m")).first?.key == due.first?.key)
        #expect(NoticePlanner.due(desired: set, facts: facts, now: now + duration("1h")).first?.key != due.first?.key)
    }
}
