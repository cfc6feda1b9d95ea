import Prometheus
import Testing
import TokenctlController
import TokenctlModel
import TokenctlPlanner

/// The metrics as Prometheus exposes them, each test with its own registry.
@Suite struct ControllerMetricsTests {
    let now = ts(10_000 * day)
    let registry = PrometheusCollectorRegistry()

    func exposition() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    func record(_ metrics: ControllerMetrics, _ outcome: PassOutcome, retries: RetryBook = RetryBook(), ready: Bool = true) {
        metrics.record(outcome, duration: 0.25, retries: retries, ready: ready, at: Double(now.secondsSinceEpoch))
    }

    @Test func expiryBucketsAreCumulativeAndSayWhetherARotationComesInTime() {
        let metrics = ControllerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let fleet = FleetSnapshot(rows: [
            row("soon", issuer: "github", expiresAt: now + secs(2 * day), nextRotationAt: now + secs(day)),
            row("stuck", issuer: "github", expiresAt: now + secs(2 * day)),
            row("gone", issuer: "github", expiresAt: ts(now.secondsSinceEpoch - (60)), health: .expired),
            row("later", issuer: "github", expiresAt: now + secs(60 * day), nextRotationAt: now + secs(40 * day)),
        ], now: now)
        record(metrics, PassOutcome(result: .success, stateReachable: true, fleet: fleet))
        let text = exposition()
        #expect(text.contains(#"tokenctl_tokens_expiring{issuer="github",within="1d",rotation="none"} 1"#))
        #expect(text.contains(#"tokenctl_tokens_expiring{issuer="github",within="3d",rotation="none"} 2"#))
        #expect(text.contains(#"tokenctl_tokens_expiring{issuer="github",within="3d",rotation="scheduled"} 1"#))
        #expect(text.contains(#"tokenctl_tokens_expiring{issuer="github",within="30d",rotation="scheduled"} 1"#))
        #expect(text.contains(#"tokenctl_tokens_expiring{issuer="github",within="1d",rotation="scheduled"} 0"#))
        #expect(text.contains("tokenctl_ready 1"))
        // Off by default: no series names a token.
        #expect(!text.contains("tokenctl_token_expiration_timestamp_seconds"))
        #expect(!text.contains("stuck"))
    }

    @Test func failuresAreCountedByHowLongTheyHaveLasted() {
        let metrics = ControllerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        var retries = RetryBook()
        retries.recordFailure(key: "default/old", action: "rotate", error: "down", now: ts(now.secondsSinceEpoch - (2 * day)))
        retries.recordFailure(key: "default/new", action: "rotate", error: "down", now: ts(now.secondsSinceEpoch - (60)))
        retries.recordFailure(key: "default/gone", action: "retire", error: "down", now: ts(now.secondsSinceEpoch - (7_200)))
        record(metrics, PassOutcome(result: .partial, stateReachable: true), retries: retries, ready: false)
        let text = exposition()
        #expect(text.contains(#"tokenctl_failing_changes{action="rotate",failing_for="0s"} 2"#))
        #expect(text.contains(#"tokenctl_failing_changes{action="rotate",failing_for="1h"} 1"#))
        #expect(text.contains(#"tokenctl_failing_changes{action="rotate",failing_for="1d"} 1"#))
        #expect(text.contains(#"tokenctl_failing_changes{action="rotate",failing_for="3d"} 0"#))
        #expect(text.contains(#"tokenctl_failing_changes{action="retire",failing_for="1h"} 1"#))
        #expect(text.contains(#"tokenctl_failing_changes{action="retire",failing_for="6h"} 0"#))
        #expect(text.contains("tokenctl_tokens_needing_attention 3"))
        #expect(text.contains("tokenctl_ready 0"))
        // The book emptied: every bucket falls back to zero.
        record(metrics, PassOutcome(result: .success, stateReachable: true))
        #expect(exposition().contains(#"tokenctl_failing_changes{action="rotate",failing_for="0s"} 0"#))
    }

    @Test func issuesAreCountedByIssuerAndOwnerWithOwnersPastTheCapGrouped() {
        let metrics = ControllerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let owners = (0..<(ControllerMetrics.ownerLabelCap + 5)).map { "team-\($0)" }
        let changes = owners.map { PassOutcome.Change(key: "default/\($0)", action: .issue, failure: nil, issuer: "local", owner: $0) }
            + [PassOutcome.Change(key: "default/x", action: .rotate, failure: nil, issuer: "local", owner: "team-0"),
               PassOutcome.Change(key: "default/y", action: .rotate, failure: "down", issuer: "local", owner: "team-0")]
        record(metrics, PassOutcome(result: .partial, stateReachable: true, changes: changes))
        let text = exposition()
        #expect(text.contains(#"tokenctl_credentials_issued_total{issuer="local",owner="team-0"} 2"#))
        #expect(text.contains(#"tokenctl_credentials_issued_total{issuer="local",owner="_other"} 5"#))
        #expect(!text.contains("team-\(ControllerMetrics.ownerLabelCap)\""))
        let ownerSeries = text.split(separator: "\n").filter { $0.hasPrefix("tokenctl_credentials_issued_total{") }
        #expect(ownerSeries.count == ControllerMetrics.ownerLabelCap + 1)
    }

    @Test func perTokenExpiriesComeAndGoWithTheTokens() {
        let metrics = ControllerMetrics(perToken: true, factory: PrometheusMetricsFactory(registry: registry))
        let first = FleetSnapshot(rows: [row("a", expiresAt: now + secs(100)), row("b", expiresAt: now + secs(200))], now: now)
        record(metrics, PassOutcome(result: .success, stateReachable: true, fleet: first))
        let expected = now.secondsSinceEpoch + 100
        #expect(exposition().contains(#"tokenctl_token_expiration_timestamp_seconds{namespace="default",name="a",issuer="builtin",rotation="none"} \#(expected).0"#))
        let second = FleetSnapshot(rows: [row("a", expiresAt: now + secs(100), nextRotationAt: now + secs(50))], now: now)
        record(metrics, PassOutcome(result: .success, stateReachable: true, fleet: second))
        let text = exposition()
        #expect(text.contains(#"name="a",issuer="builtin",rotation="scheduled"}"#))
        #expect(!text.contains(#"rotation="none"} \#(expected)"#))
        #expect(!text.contains(#"name="b""#))
    }

    @Test func ghostsAreReportedPerIssuerOnlyWhenInventoriesWereRead() {
        let metrics = ControllerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        record(metrics, PassOutcome(result: .success, stateReachable: true))
        #expect(!exposition().contains("tokenctl_ghosts"))
        record(metrics, PassOutcome(result: .success, stateReachable: true, ghosts: ["local": 2, "db": 0]))
        #expect(exposition().contains(#"tokenctl_ghosts{issuer="local"} 2"#))
        #expect(exposition().contains(#"tokenctl_ghosts{issuer="db"} 0"#))
        record(metrics, PassOutcome(result: .success, stateReachable: true, ghosts: ["local": 0, "db": 0]))
        #expect(exposition().contains(#"tokenctl_ghosts{issuer="local"} 0"#))
    }

    @Test func recordsEveryKindOfOutcome() {
        let metrics = ControllerMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let outcomes: [PassOutcome] = [
            PassOutcome(result: .partial, stateReachable: true, manifestsValid: false, manifestErrors: 2,
                        changes: PlanAction.allCases.flatMap { [.init(key: "default/x", action: $0, failure: nil),
                                                                .init(key: "default/y", action: $0, failure: "e")] },
                        plannedKeys: ["default/x", "default/y"], fleet: FleetSnapshot(rows: [], now: now)),
            .unreachable("state locked"),
        ]
        for outcome in outcomes { record(metrics, outcome) }
        let text = exposition()
        #expect(text.contains(#"tokenctl_changes_total{action="retire",result="failure"} 1"#))
        #expect(text.contains(#"tokenctl_reconcile_passes_total{result="failed"} 1"#))
        #expect(text.contains("tokenctl_state_reachable 0"))
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
                                   retries: RetryBook(), ready: true, at: 1)
                    return index
                }
            }
            return await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        // Every concurrent recording returned (no deadlock on the gauge lock, no trap).
        #expect(finished == Set(0..<20))
    }
}
