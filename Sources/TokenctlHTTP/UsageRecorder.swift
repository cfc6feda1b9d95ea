import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TokenctlBuiltinIssuer
import TokenctlModel

/// Collects the last use of each introspected credential in memory and writes them to the authority in
/// batches: one transaction every few seconds instead of one fsync per request.
///
/// ```swift
/// let usage = UsageRecorder(authority: authority, every: 5, logger: logger)
/// usage.note(credentialID: "tk-0123", at: now)   // from the request path
/// try await usage.run()                           // a Service: flushes until shutdown, then once more
/// ```
package final class UsageRecorder: Service, Sendable {
    private let authority: BuiltinAuthority
    private let index: IntrospectionIndex?
    private let every: Double
    private let logger: Logger
    private let pending = Mutex<[String: Timestamp]>([:])

    /// Creates a recorder that flushes every `every` seconds what was noted here and the uses `index` noted.
    package init(authority: BuiltinAuthority, index: IntrospectionIndex? = nil, every: Double, logger: Logger) {
        self.authority = authority
        self.index = index
        self.every = every
        self.logger = logger
    }

    /// Notes a use.
    package func note(credentialID: String, at time: Timestamp) {
        pending.withLock { pending in
            if let known = pending[credentialID], known >= time { return }
            pending[credentialID] = time
        }
    }

    /// Writes what was noted since the last flush.
    package func flush() {
        var batch = pending.withLock { pending in
            let batch = pending
            pending = [:]
            return batch
        }
        batch.merge(index?.takeUses() ?? [:]) { max($0, $1) }
        do {
            try authority.recordUse(batch)
        } catch {
            // Losing a last-used time is not worth failing requests over; it is retried with the next batch.
            logger.warning("could not record token use", metadata: ["error": "\(error)", "credentials": "\(batch.count)"])
            // The index's uses are in the batch: kept here, they go with the next one.
            pending.withLock { $0.merge(batch) { max($0, $1) } }
        }
    }

    package func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(self.every * 1e9)) }
            await IntrospectionIndex.offThePool { [self] in flush() }
        }
    }
}
