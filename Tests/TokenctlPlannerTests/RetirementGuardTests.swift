import Testing
import TokenctlModel
import TokenctlPlanner

/// The retirement guard counts tokens retired because they left the manifests, against a share of the managed ones.
@Suite struct RetirementGuardTests {
    static func fleet(_ count: Int) -> RecordedState {
        state((1...count).map { recorded("payments/t\($0)") })
    }

    static func plan(keeping kept: Int, of count: Int) -> (Plan, RecordedState) {
        let recordedState = fleet(count)
        let desired = manifests((1...max(1, kept)).prefix(kept).map { token("payments/t\($0)") })
        return (Planner.plan(desired: desired, recorded: recordedState, observed: nil, now: now), recordedState)
    }

    @Test(arguments: [
        // (managed, kept, limit %, trips)
        (50, 45, 10, false), (50, 44, 10, true), (3, 2, 10, false), (3, 1, 10, true), (100, 0, 10, true),
        (100, 50, 50, false), (100, 49, 50, true), (10, 9, 0, false), (10, 8, 0, true), (20, 0, 100, false),
    ])
    func tripsPastTheLimit(managed: Int, kept: Int, limit: Int, trips: Bool) {
        let (plan, recordedState) = Self.plan(keeping: kept, of: managed)
        let tripped = RetirementGuard(limitPercent: limit).check(plan, recorded: recordedState)
        #expect((tripped != nil) == trips, "\(managed - kept) of \(managed) at \(limit)%")
        if let tripped {
            #expect(tripped.retiring == managed - kept && tripped.managed == managed)
            #expect(tripped.message.contains("--allow-mass-retirement") && tripped.message.contains("payments/t"))
        }
    }

    @Test func routineRetirementsDoNotCount() {
        // Old versions whose overlap ended are retired every rotation: they are not tokens leaving.
        let recordedState = state((1...10).map { index in
            recorded("payments/t\(index)", versions: [version(1, status: .retiring, retireAfter: ago("1h")), version(2)])
        })
        let plan = Planner.plan(desired: manifests((1...10).map { token("payments/t\($0)") }), recorded: recordedState, observed: nil, now: now)
        #expect(plan.changes.filter { $0.action == .retire }.count == 10)
        #expect(RetirementGuard().check(plan, recorded: recordedState) == nil)
    }

    @Test func revokedTokensAreNotManaged() {
        var recordedState = Self.fleet(10)
        for index in 1...8 {
            recordedState.tokens[tid("payments/t\(index)")]?.versions[0].status = .revoked
        }
        // Two managed tokens; retiring one of them is within the floor of one.
        let plan = Planner.plan(desired: manifests([token("payments/t10")]), recorded: recordedState, observed: nil, now: now)
        #expect(RetirementGuard().check(plan, recorded: recordedState) == nil)
    }

    @Test func ghostsRevokedAtOnceCountToo() {
        // A state restored from an old backup: every credential issued since looks like a ghost of a `ghosts: retire` issuer.
        let recordedState = state((1...10).map { recorded("payments/t\($0)", issuer: "strict") })
        let desired = manifests((1...10).map { token("payments/t\($0)", issuer: "strict") })
        var inventory = recordedState.tokens.values.map { observed("strict", $0.versions[0].credentialID) }
        inventory += (1...5).map { observed("strict", "newer-\($0)") }
        let plan = Planner.plan(desired: desired, recorded: recordedState, observed: Observation(inventories: ["strict": inventory]), now: now)
        #expect(plan.changes.filter { $0.action == .ghost && $0.retireGhost }.count == 5)
        let tripped = RetirementGuard().check(plan, recorded: recordedState)
        #expect(tripped?.retiring == 5 && tripped?.ghosts == 5 && tripped?.message.contains("5 ghosts") == true)
    }
}
