import Foundation
import Logging
import TokenctlController
import TokenctlModel
import TokenctlNotify
import TokenctlPlanner
import TokenctlState

/// `tokenctl notices` without `--dry-run`: queue what is due under the state lock (audited), then make one delivery
/// attempt for every pending notice. What fails stays pending for the next run or the controller.
///
/// ```swift
/// let outcome = try await NoticeRun.send(locked: locked, desired: manifests, facts: facts, directory: ".tokenctl", origin: origin,
///                                        now: now, logger: logger)
/// ```
package enum NoticeRun {
    /// What a run did.
    package struct Outcome: Sendable {
        /// Notices queued by this run (never queued before).
        package var queued: [Notice]
        /// The delivery round.
        package var round: NoticeDelivery.Round
    }

    /// Queues due notices while `locked` holds the lock, releases it, then delivers everything pending.
    package static func send(locked: LockedState, desired: ManifestSet, facts: NoticeFacts, directory: String, origin: RequestOrigin,
                             now: Timestamp, clock: @Sendable () -> Timestamp, logger: Logger) async throws -> Outcome {
        let queued: [Notice]
        do {
            let due = NoticePlanner.due(desired: desired, facts: facts, now: now)
            let key = try await AuditKey.forRun(locked.store, stateDirectory: directory, manifests: desired)
            queued = try await NoticeSurvey.queue(due, store: locked.store, auditKey: key, origin: origin, command: "notices", now: now)
        } catch {
            await locked.lock.release()
            throw error
        }
        // Delivery takes as long as the receivers do: it does not hold the lock that applies and the controller need.
        await locked.lock.release()
        let (delivery, client) = NoticeSending.delivery(logger: logger)
        let notifiers = Dictionary(desired.notifiers.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        // Delivery happens now, not when the run started (the lock may have been waited for): signatures carry this time.
        let sendingAt = clock()
        let longest = desired.notifiers.map(\.timeout.seconds).max() ?? 10
        var round = NoticeDelivery.Round()
        do {
            // Claimed in rounds like the controller's, so that a controller delivering meanwhile never sends the same ones.
            while true {
                let claimed = try await locked.store.claimNotices(notifiers: notifiers.keys.sorted(), dueBy: sendingAt, limit: NoticeDelivery.batchSize,
                                                                  claimUntil: sendingAt + TokenDuration(seconds: 60 + longest))
                if claimed.isEmpty { break }
                let done = await delivery.deliver(claimed, notifiers: notifiers, outbox: locked.store, now: sendingAt)
                round.sent += done.sent
                round.failed += done.failed
            }
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
        return Outcome(queued: queued, round: round)
    }
}
