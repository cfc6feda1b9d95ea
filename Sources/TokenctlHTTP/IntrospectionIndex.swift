import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TokenctlBuiltinIssuer
import TokenctlModel

/// Every credential of the builtin authority in memory, keyed by its token's SHA-256, with its introspection answer
/// ready: answering a request is a hash and a table lookup, with no database access and no text to build.
///
/// ```swift
/// let index = try IntrospectionIndex(authority: authority, logger: logger)   // loads every credential once
/// index.entry(for: TokenDigest(token: bytes))?.answer                        // {"active":true,…}
/// try await index.run()   // a Service: reads the authority's change log every `refreshInterval`
/// ```
///
/// Staleness is bounded: a revocation, rotation or new credential written by any process reaches the index within
/// `refreshInterval` plus one read of the changes, and a token the index does not know yet is looked up in the
/// database, so a credential is answered active from the moment it is issued. An index whose last successful read of
/// the changes began more than `maximumAge` ago (the database cannot be read, the process was starved) is not used:
/// requests go to the database, as they would without an index.
package final class IntrospectionIndex: Service, Sendable {
    /// One credential as introspection answers it.
    package final class Entry: Sendable {
        /// The authority's id for the credential.
        package let credentialID: String
        /// Revoked credentials stay in the index: a revoked token is answered without a database lookup.
        package let revoked: Bool
        /// Seconds since the epoch; `Int64.max` for a credential that never expires.
        package let expiresAt: Int64
        /// The JSON of an active answer.
        package let answer: ByteBuffer
        /// The last time the token was answered active (seconds since the epoch, 0 for never), set on the request path.
        let lastUsed: Atomic<Int64>
        /// The last-used time already handed to the recorder.
        let recorded: Atomic<Int64>

        init(facts: BuiltinAuthority.CredentialFacts, previous: Entry?) {
            credentialID = facts.credential.credentialID
            revoked = facts.revoked
            expiresAt = facts.credential.expiresAt?.secondsSinceEpoch ?? Int64.max
            answer = ByteBuffer(string: Introspection.activeAnswer(facts.credential))
            lastUsed = Atomic(previous?.lastUsed.load(ordering: .relaxed) ?? 0)
            recorded = Atomic(previous?.recorded.load(ordering: .relaxed) ?? 0)
        }

        /// Notes a use at `time`; a later time is never replaced by an earlier one.
        func noteUse(at time: Int64) {
            var known = lastUsed.load(ordering: .relaxed)
            while known < time {
                let (exchanged, original) = lastUsed.compareExchange(expected: known, desired: time, ordering: .relaxed)
                if exchanged { return }
                known = original
            }
        }
    }

    /// How often the authority's change log is read.
    package static let refreshInterval: Duration = .milliseconds(250)
    /// How old the last successful read of the change log may be for the index to answer: the staleness bound.
    package static let maximumAge: Duration = .seconds(1)

    private let authority: BuiltinAuthority
    private let logger: Logger
    private let entries = Mutex<[TokenDigest: Entry]>([:])
    /// The newest change of the log the index reflects.
    private let newest = Mutex<Int64?>(nil)
    /// When the last successful read of the change log began (nanoseconds of uptime): it reflects every change made before.
    private let readAt = Atomic<UInt64>(0)

    /// Loads every credential of `authority`.
    package init(authority: BuiltinAuthority, logger: Logger) throws(BuiltinAuthority.AuthorityError) {
        self.authority = authority
        self.logger = logger
        try refresh()
    }

    /// The credential a token digest belongs to, if the index knows it.
    package func entry(for digest: TokenDigest) -> Entry? {
        entries.withLock { $0[digest] }
    }

    /// Whether the index reflects every change made more than `maximumAge` ago.
    package var isCurrent: Bool {
        DispatchTime.now().uptimeNanoseconds - readAt.load(ordering: .acquiring) < UInt64(Self.maximumAge.components.seconds) * 1_000_000_000
    }

    /// How many credentials the index holds.
    package var count: Int { entries.withLock { $0.count } }

    /// Reads what changed in the authority since the last refresh (everything, the first time) into the index.
    package func refresh() throws(BuiltinAuthority.AuthorityError) {
        let started = DispatchTime.now().uptimeNanoseconds
        let since = newest.withLock { $0 }
        let (facts, latest, complete) = try authority.changes(after: since)
        if complete {
            var fresh: [TokenDigest: Entry] = [:]
            fresh.reserveCapacity(facts.count)
            let old = entries.withLock { $0 }
            for fact in facts {
                guard let digest = TokenDigest(bytes: fact.tokenHash) else { continue }
                fresh[digest] = Entry(facts: fact, previous: old[digest])
            }
            entries.withLock { $0 = fresh }
        } else if !facts.isEmpty {
            let changed = facts.compactMap { fact in TokenDigest(bytes: fact.tokenHash).map { (digest: $0, fact: fact) } }
            let previous = entries.withLock { current in changed.map { current[$0.digest] } }
            let updated = zip(changed, previous).map { ($0.digest, Entry(facts: $0.fact, previous: $1)) }
            entries.withLock { current in for (digest, entry) in updated { current[digest] = entry } }
        }
        newest.withLock { $0 = latest }
        readAt.store(started, ordering: .releasing)
    }

    /// The uses noted since the last call, by credential id (for the last-used recorder).
    package func takeUses() -> [String: Timestamp] {
        // A copy of the table is a reference, taken in no time: requests are never kept waiting on the lock while
        // 100,000 entries are looked at.
        let table = entries.withLock { $0 }
        var uses: [String: Timestamp] = [:]
        for entry in table.values {
            let used = entry.lastUsed.load(ordering: .relaxed)
            if used > entry.recorded.load(ordering: .relaxed) {
                entry.recorded.store(used, ordering: .relaxed)
                uses[entry.credentialID] = Timestamp(secondsSinceEpoch: used)
            }
        }
        return uses
    }

    package func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.refreshInterval) }
            await Self.offThePool { [self] in
                do {
                    try refresh()
                } catch {
                    // The index keeps answering from what it knows; the next refresh tries again.
                    logger.warning("cannot read the builtin authority's changes", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Runs blocking database work on a Dispatch thread: on Swift's cooperative pool (one thread per core) it would hold
    /// up the requests waiting for that thread.
    static func offThePool(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global(qos: .utility).async {
                work()
                done.resume()
            }
        }
    }
}
