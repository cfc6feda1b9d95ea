import Testing
import TokenctlController
import TokenctlModel
import TokenctlPlanner

/// No MetricsSystem is bootstrapped here: swift-metrics falls back to its no-op backend.
@Suite struct ControllerMetricsTests {
    @Test func recordsEveryKindOfOutcomeWithoutABackend() {
        let metrics = ControllerMetrics()
        let now = ts(10_000 * day)
        let fleet = FleetSnapshot(rows: [row("a", issuer: "github", expiresAt: now + secs(60)), row("b", health: .expired)], now: now)
        let outcomes: [PassOutcome] = [
            PassOutcome(result: .success, stateReachable: true, fleet: fleet),
            PassOutcome(result: .partial, stateReachable: true, manifestsValid: false, manifestErrors: 2,
                        changes: PlanAction.allCases.flatMap { [.init(key: "default/x", action: $0, failure: nil),
                                                                .init(key: "default/y", action: $0, failure: "e")] },
                        plannedKeys: ["default/x", "default/y"], fleet: FleetSnapshot(rows: [], now: now)),
            .unreachable("state locked"),
            PassOutcome(result: .success, stateReachable: true, fleet: FleetSnapshot(rows: [row("c", issuer: "other")], now: now)),
        ]
        for (index, outcome) in outcomes.enumerated() {
            metrics.record(outcome, duration: 0.25 * Double(index), needingAttention: index, at: Double(now.secondsSinceEpoch))
        }
        // Reaching here without a trap is the point; the fleet fed in must still be what it was.
        #expect(fleet.tokensByIssuerAndHealth.count == 2)
        #expect(fleet.secondsUntilEarliestExpiry == 60)
    }

    @Test func severalInstancesCoexist() async {
        let first = ControllerMetrics()
        let second = ControllerMetrics()
        let finished = await withTaskGroup(of: Int.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let metrics = index.isMultiple(of: 2) ? first : second
                    let fleet = FleetSnapshot(rows: [row("t\(index)", issuer: "issuer-\(index % 3)")], now: ts(0))
                    metrics.record(PassOutcome(result: .success, stateReachable: true, fleet: fleet), duration: 0.01,
                                   needingAttention: 0, at: 1)
                    return index
                }
            }
            return await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        // Every concurrent recording returned (no deadlock on the gauge lock, no trap).
        #expect(finished == Set(0..<20))
    }
}
