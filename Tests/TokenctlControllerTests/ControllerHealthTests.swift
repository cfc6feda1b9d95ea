import Testing
@testable import TokenctlController
import TokenctlModel

@Suite struct ControllerHealthTests {
    let ok = PassOutcome(result: .success, stateReachable: true)

    @Test func notReadyBeforeAnyPass() {
        let health = ControllerHealth(staleAfter: 660)
        let readiness = health.readiness(at: 1_000)
        #expect(!readiness.ready)
        #expect(readiness.reason.contains("no reconcile pass"))
        #expect(health.snapshot == ControllerHealth.Snapshot())
        #expect(health.snapshot.lastPassAt == nil)
    }

    @Test func readyAfterASuccess() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(ok, retries: RetryBook(), at: 1_000)
        let readiness = health.readiness(at: 1_003)
        #expect(readiness.ready)
        #expect(readiness.reason == "the last pass succeeded 3s ago")
        let snapshot = health.snapshot
        #expect(snapshot.lastPassAt == 1_000)
        #expect(snapshot.lastSuccessAt == 1_000)
        #expect(snapshot.lastResult == .success)
        #expect(snapshot.stateReachable)
        #expect(snapshot.lastError == nil)
    }

    @Test func aPartialPassCountsAsSuccess() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(PassOutcome(result: .partial, stateReachable: true), retries: RetryBook(), at: 1_000)
        #expect(health.readiness(at: 1_001).ready)
        #expect(health.snapshot.lastSuccessAt == 1_000)
    }

    @Test func notReadyAfterAFailedPassWithTheErrorInTheReason() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(ok, retries: RetryBook(), at: 1_000)
        health.record(.unreachable("state is locked by pid 4242"), retries: RetryBook(), at: 1_010)
        let readiness = health.readiness(at: 1_015)
        #expect(!readiness.ready)
        #expect(readiness.reason.contains("state is locked by pid 4242"))
        #expect(readiness.reason.contains("failed"))
        #expect(readiness.reason.contains("5s ago"))
        let snapshot = health.snapshot
        #expect(snapshot.lastResult == .failed)
        #expect(!snapshot.stateReachable)
        #expect(snapshot.lastPassAt == 1_010)
        // The last success is remembered across the failure.
        #expect(snapshot.lastSuccessAt == 1_000)
    }

    @Test func readyAgainAfterRecovery() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(.unreachable("down"), retries: RetryBook(), at: 1_000)
        #expect(!health.readiness(at: 1_000).ready)
        health.record(ok, retries: RetryBook(), at: 1_020)
        #expect(health.readiness(at: 1_021).ready)
        #expect(health.snapshot.lastError == nil)
    }

    @Test func notReadyWhenTheLastSuccessIsStale() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(ok, retries: RetryBook(), at: 1_000)
        #expect(health.readiness(at: 1_660).ready)          // exactly staleAfter: still ready
        let stale = health.readiness(at: 1_661)
        #expect(!stale.ready)
        #expect(stale.reason.contains("no pass has succeeded for 11m"))
    }

    @Test func reasonMentionsInvalidManifests() {
        let health = ControllerHealth(staleAfter: 660)
        health.record(PassOutcome(result: .success, stateReachable: true, manifestsValid: false, manifestErrors: 3),
                      retries: RetryBook(), at: 1_000)
        let readiness = health.readiness(at: 1_000)
        #expect(readiness.ready)
        #expect(readiness.reason.contains("manifests have errors"))
        #expect(!health.snapshot.manifestsValid)
        #expect(!readiness.reason.contains("need attention"))
    }

    @Test func reasonMentionsTokensNeedingAttention() {
        var book = RetryBook()
        book.recordFailure(key: "default/b", action: "rotate", error: "e", now: ts(900))
        book.recordFailure(key: "default/a", action: "issue", error: "e", now: ts(900))
        let health = ControllerHealth(staleAfter: 660)
        health.record(PassOutcome(result: .partial, stateReachable: true), retries: book, at: 1_000)
        let readiness = health.readiness(at: 1_000)
        #expect(readiness.ready)
        #expect(readiness.reason.contains("2 token(s) need attention"))
        #expect(!readiness.reason.contains("manifests"))
        #expect(health.snapshot.needsAttention.map(\.key) == ["default/a", "default/b"])
    }

    @Test func ageOverTwoMinutesIsInMinutes() {
        let health = ControllerHealth(staleAfter: 3_600)
        health.record(ok, retries: RetryBook(), at: 1_000)
        #expect(health.readiness(at: 1_119).reason == "the last pass succeeded 119s ago")
        #expect(health.readiness(at: 1_300).reason == "the last pass succeeded 5m ago")
    }
}
