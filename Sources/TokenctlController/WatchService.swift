import Foundation
import Logging
import ServiceLifecycle
import TokenctlModel

/// The watch loop of `reconcile --watch`: a level-based controller run as a swift-service-lifecycle `Service`.
///
/// ```swift
/// let watch = WatchService(pass: { request in await pass.run(request) }, schedule: WakeSchedule(interval: 300),
///                          health: health, metrics: ControllerMetrics(), logger: logger)
/// try await ServiceGroup(services: [watch], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
///
/// Each pass compares the whole desired state with the whole recorded state (level-based: a missed wake-up
/// costs nothing but time). The loop wakes at the earliest of the jittered interval, the next moment something
/// falls due, and the next retry of a failing token. Graceful shutdown lets the pass in flight finish (it
/// releases the state lock), then the loop ends.
package struct WatchService: Service {
    /// Runs one pass; never throws: failures come back in the outcome.
    package typealias Pass = @Sendable (PassRequest) async -> PassOutcome

    private let pass: Pass
    private let schedule: WakeSchedule
    private let health: ControllerHealth
    private let metrics: ControllerMetrics
    private let logger: Logger
    private let clock: @Sendable () -> Double
    private let sleep: @Sendable (Double) async throws -> Void
    private let onPass: @Sendable (RetryBook) -> Void
    private let initialRetries: RetryBook

    /// Creates the loop. `clock` reads seconds since the epoch and `sleep` waits that many seconds (both the system's
    /// unless a test passes its own); `onPass` sees the retry book after each pass (the command layer persists it for
    /// `tokenctl status`); `retries` is the book a previous controller left.
    package init(pass: @escaping Pass, schedule: WakeSchedule, health: ControllerHealth, metrics: ControllerMetrics, logger: Logger,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
                sleep: @escaping @Sendable (Double) async throws -> Void = { try await Task.sleep(nanoseconds: UInt64($0 * 1e9)) },
                onPass: @escaping @Sendable (RetryBook) -> Void = { _ in }, retries: RetryBook = RetryBook()) {
        self.initialRetries = retries
        self.pass = pass
        self.schedule = schedule
        self.health = health
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.sleep = sleep
        self.onPass = onPass
    }

    package func run() async throws {
        var retries = initialRetries
        var stateFailures = 0
        var generator = SystemRandomNumberGenerator()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = clock()
            let now = Timestamp(secondsSinceEpoch: Int64(started.rounded(.down)))
            let outcome = await pass(PassRequest(now: now, deferred: retries.waitingKeys(now: now),
                                                 failing: retries.entries.values.sorted { $0.key < $1.key }))
            let ended = clock()
            Self.update(&retries, with: outcome, now: now)
            health.record(outcome, retries: retries, at: ended)
            metrics.record(outcome, duration: ended - started, retries: retries, ready: health.readiness(at: ended).ready, at: ended)
            onPass(retries)
            log(outcome, duration: ended - started, retries: retries)

            let wake: Double
            if outcome.result == .failed {
                stateFailures += 1
                wake = schedule.retryAfterStateFailure(now: ended, consecutiveFailures: stateFailures)
            } else {
                stateFailures = 0
                wake = schedule.nextWake(after: ended, nextDue: outcome.nextDueAt, nextRetry: retries.earliestRetry,
                                         jitter: Double.random(in: 0...1, using: &generator))
            }
            logger.debug("sleeping until the next pass", metadata: ["seconds": "\(String(format: "%.1f", max(0, wake - clock())))"])
            let delay = max(0, wake - clock())
            // Graceful shutdown cuts the sleep short; a pass is never interrupted.
            try? await cancelWhenGracefulShutdown { [sleep] in
                try await sleep(delay)
            }
        }
        logger.info("controller stopped")
    }

    /// Folds a pass's changes into the retry book: failures back off, successes clear, vanished work is forgotten.
    static func update(_ retries: inout RetryBook, with outcome: PassOutcome, now: Timestamp) {
        guard outcome.result != .failed else { return }
        for change in outcome.changes {
            if let failure = change.failure {
                retries.recordFailure(key: change.key, action: change.action.rawValue, error: failure, now: now)
            } else {
                retries.recordSuccess(key: change.key)
            }
        }
        retries.keepOnly(outcome.plannedKeys)
    }

    private func log(_ outcome: PassOutcome, duration: Double, retries: RetryBook) {
        var metadata: Logger.Metadata = [
            "result": "\(outcome.result.rawValue)",
            "changes": "\(outcome.changes.count)",
            "failed": "\(outcome.changes.filter { $0.failure != nil }.count)",
            "deferred": "\(outcome.deferredCount)",
            "duration_ms": "\(Int(duration * 1000))",
        ]
        if let error = outcome.error { metadata["error"] = "\(error)" }
        if let next = outcome.nextDueAt { metadata["next_due"] = "\(next)" }
        if outcome.reused { metadata["reused"] = "true" }
        switch outcome.result {
        case .failed: logger.error("reconcile pass failed", metadata: metadata)
        case .partial: logger.warning("reconcile pass finished with failures", metadata: metadata)
        case .success where outcome.standbyFor != nil:
            logger.debug("standby: another replica holds the lease", metadata: ["leader": "\(outcome.standbyFor ?? "")"])
        case .success where outcome.changes.isEmpty: logger.debug("reconcile pass: nothing to do", metadata: metadata)
        case .success: logger.info("reconcile pass applied changes", metadata: metadata)
        }
        for change in outcome.changes {
            guard let failure = change.failure else { continue }
            let entry = retries.entries[change.key]
            logger.warning("change failed; will retry", metadata: [
                "token": "\(change.key)", "action": "\(change.action.rawValue)", "error": "\(failure)",
                "failures": "\(entry?.failures ?? 0)", "next_attempt": "\(entry?.nextAttemptAt.description ?? "-")",
            ])
        }
        if !outcome.manifestsValid && outcome.result != .failed {
            logger.error("the manifests have errors; keeping the last valid set, nothing from the broken set is applied",
                         metadata: ["errors": "\(outcome.manifestErrors)"])
        }
    }
}
