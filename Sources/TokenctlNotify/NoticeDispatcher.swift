import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TokenctlModel
import TokenctlState

/// The controller's notice sender: a `Service` that delivers the outbox's due notices every `interval`, apart from the
/// reconcile passes, so that a slow or failing receiver never delays a rotation.
///
/// ```swift
/// let dispatcher = NoticeDispatcher(source: { (board.current.notifiers, board.current.leading) }, openOutbox: { try open() },
///                                   delivery: delivery, logger: logger)
/// // run it in the controller's ServiceGroup
/// ```
package final class NoticeDispatcher: Service {
    /// Notices fetched per round at most.
    package static let roundSize = 500
    /// The `# HELP` text of the notice metrics (the dispatcher's and the delivery's).
    package static let metricHelp = [
        "tokenctl_notices_pending": "Notices queued and not delivered yet.",
        "tokenctl_notices_failing": "Pending notices whose delivery has failed at least once.",
        "tokenctl_notice_oldest_pending_seconds": "How long the oldest pending notice has waited (0 when none waits).",
        "tokenctl_notices_sent_total": "Notices a receiver accepted, by notifier and event.",
        "tokenctl_notice_delivery_failures_total": "Notices whose delivery attempt failed, by notifier.",
    ]

    private let source: @Sendable () -> (notifiers: [String: Notifier], leading: Bool)
    private let openOutbox: @Sendable () throws -> (any NoticeOutbox)?
    private let delivery: NoticeDelivery
    private let interval: Duration
    private let clock: @Sendable () -> Timestamp
    private let logger: Logger
    private let pending: Gauge
    private let failing: Gauge
    private let oldest: Gauge

    /// `openOutbox` returns nil while there is no state yet; `source` says which notifiers exist and whether to deliver.
    package init(source: @escaping @Sendable () -> (notifiers: [String: Notifier], leading: Bool),
                 openOutbox: @escaping @Sendable () throws -> (any NoticeOutbox)?, delivery: NoticeDelivery,
                 interval: Duration = .seconds(1), clock: @escaping @Sendable () -> Timestamp = { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) },
                 logger: Logger, factory: MetricsFactory = MetricsSystem.factory) {
        self.source = source
        self.openOutbox = openOutbox
        self.delivery = delivery
        self.interval = interval
        self.clock = clock
        self.logger = logger
        pending = Gauge(label: "tokenctl_notices_pending", factory: factory)
        failing = Gauge(label: "tokenctl_notices_failing", factory: factory)
        oldest = Gauge(label: "tokenctl_notice_oldest_pending_seconds", factory: factory)
    }

    package func run() async throws {
        var outbox: (any NoticeOutbox)?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if outbox == nil { outbox = try? openOutbox() }
            if let current = outbox {
                // Shutdown cancels a round in flight, so a hanging receiver never keeps the process (and its lease).
                let healthy = await cancelWhenGracefulShutdown { await self.round(current) }
                // A state that could not be read (replaced, say) is opened afresh next time.
                if healthy == false { outbox = nil }
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                break
            }
        }
    }

    /// Delivers what is due now, when this replica leads; updates the outbox gauges either way. False when the outbox
    /// could not be read.
    @discardableResult
    package func round(_ outbox: any NoticeOutbox) async -> Bool {
        let now = clock()
        let (notifiers, leading) = source()
        var healthy = true
        if leading && !notifiers.isEmpty {
            do {
                // Claimed for as long as the slowest possible round takes, so that no other sender takes them meanwhile.
                let longest = notifiers.values.map(\.timeout.seconds).max() ?? 10
                let claimUntil = now + TokenDuration(seconds: 60 + longest * Int64(Self.roundSize / NoticeDelivery.batchSize + 1))
                let due = try await outbox.claimNotices(notifiers: notifiers.keys.sorted(), dueBy: now, limit: Self.roundSize,
                                                        claimUntil: claimUntil)
                if !due.isEmpty { _ = await delivery.deliver(due, notifiers: notifiers, outbox: outbox, now: now) }
            } catch {
                healthy = false
                logger.warning("cannot read the notice outbox", metadata: ["error": "\(error)"])
            }
        }
        if let summary = try? await outbox.noticeSummary() {
            pending.record(summary.pending)
            failing.record(summary.failing)
            oldest.record(summary.oldestPendingSince.map { Double(now.secondsSinceEpoch - $0.secondsSinceEpoch) } ?? 0)
        }
        return healthy
    }
}
