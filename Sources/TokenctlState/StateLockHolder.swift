import Foundation
import TokenctlModel

/// Holds the state lock: waits up to a timeout, then fails naming the holder. While held, it renews the lock every
/// third of its lifetime, so that a short lease (shared state) lasts as long as the holder runs, and no longer.
///
/// ```swift
/// let lock = try await StateLockHolder.acquire(store, holder: "alice", timeout: TokenDuration(seconds: 30))
/// defer { Task { await lock.release() } }
/// ```
package final class StateLockHolder: Sendable {
    /// The store whose lock is held.
    package let store: any StateStore
    /// The lock as requested (holder, host, pid, lifetime).
    package let request: LockRequest
    private let renewal: Task<Void, Never>

    private init(store: any StateStore, request: LockRequest) {
        self.store = store
        self.request = request
        renewal = Task {
            let period = UInt64(max(1, request.ttl.seconds)) * 1_000_000_000 / 3
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: period)
                guard !Task.isCancelled else { return }
                let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
                // A failed renewal (lost lease) stops renewing; the next state write is then refused (fenced).
                do { _ = try await store.acquireLock(request, now: now) } catch { return }
            }
        }
    }

    /// Takes the lock, waiting up to `timeout` while another run holds it; fails with `.locked` naming the holder.
    package static func acquire(_ store: any StateStore, holder: String, timeout: TokenDuration,
                               ttl: TokenDuration = TokenDuration(seconds: 900), log: (String) -> Void) async throws(StateError) -> StateLockHolder {
        let deadline = Date().addingTimeInterval(TimeInterval(timeout.seconds))
        while true {
            switch await attempt(store, holder: holder, ttl: ttl, log: log) {
            case .success(let holder):
                return holder
            case .failure(let error):
                guard case .locked = error, Date() < deadline, !Task.isCancelled else { throw error }
                try? await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }

    /// One attempt to take the lock, breaking a lock left by a dead process of this host.
    package static func attempt(_ store: any StateStore, holder: String, ttl: TokenDuration = TokenDuration(seconds: 900),
                               log: (String) -> Void) async -> Result<StateLockHolder, StateError> {
        let request = LockRequest(holder: holder, host: ProcessInfo.processInfo.hostName, processID: getpid(), ttl: ttl)
        while true {
            let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
            do {
                _ = try await store.acquireLock(request, now: now)
                return .success(StateLockHolder(store: store, request: request))
            } catch {
                // A lock left by a process of this host that no longer runs (killed, crashed) is stale: break it.
                if case .locked(let held) = error, held.host == request.host, held.processID != request.processID,
                   kill(held.processID, 0) != 0, errno == ESRCH {
                    log("note: breaking the state lock left by \(held.holder) (pid \(held.processID), no longer running on this host)")
                    try? await store.releaseLock(holder: held.holder, processID: held.processID)
                    continue
                }
                return .failure(error)
            }
        }
    }

    /// Stops renewing without releasing (a newer holder object renews the same lease); waits for a renewal in flight.
    package func stopRenewing() async {
        renewal.cancel()
        await renewal.value
    }

    /// Stops renewing and releases the lock.
    package func release() async {
        await stopRenewing()
        try? await store.releaseLock(holder: request.holder, processID: request.processID)
    }
}
