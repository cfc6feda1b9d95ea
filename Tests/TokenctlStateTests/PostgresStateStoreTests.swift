import Foundation
import TestSupport
import Testing
import TokenctlModel
import TokenctlPostgresState
import TokenctlState

/// The same conformance suite as SQLite, against a real PostgreSQL server (a fresh database per store),
/// plus what only a shared backend has: the lease's fencing epoch, and concurrent writers.
@Suite struct PostgresStateStoreTests {
    let conformance = StateStoreConformance {
        try PostgresStateStore(url: try PostgresTestCluster.shared().createDatabase(prefix: "state"))
    }

    @Test(arguments: StateStoreConformance.Check.allCases)
    func conformsToTheStateStoreContract(_ check: StateStoreConformance.Check) async throws { try await conformance.run(check) }

    static let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))

    /// The error an operation fails with, or nil when it succeeds.
    static func failure<T>(_ body: () async throws(StateError) -> T) async -> StateError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test func aFormerHolderCannotWriteAfterLosingTheLease() async throws {
        let url = try PostgresTestCluster.shared().createDatabase(prefix: "fence")
        let paused = try PostgresStateStore(url: url)
        let successor = try PostgresStateStore(url: url)
        let ttl = TokenDuration(seconds: 15)
        _ = try await paused.acquireLock(LockRequest(holder: "replica-a", host: "node-1", processID: 10, ttl: ttl), now: Self.now)
        let firstEpoch = try #require(await paused.leaseEpoch)
        let serial = try await paused.write([.upsert(StateStoreConformance.token("a"))], expectedSerial: 0)
        #expect(serial == 1)
        // replica-a stalls past its lease; replica-b takes over with a new epoch and writes.
        let later = Self.now + TokenDuration(seconds: 20)
        _ = try await successor.acquireLock(LockRequest(holder: "replica-b", host: "node-2", processID: 20, ttl: ttl), now: later)
        #expect(try #require(await successor.leaseEpoch) == firstEpoch + 1)
        #expect(try await successor.write([.upsert(StateStoreConformance.token("b"))], expectedSerial: nil) == 2)
        // replica-a wakes up: its writes are refused whatever serial it expects, and nothing it sends is recorded.
        await #expect(throws: StateError.self) {
            _ = try await paused.write([.upsert(StateStoreConformance.token("stale"))], expectedSerial: nil)
        }
        let refused = await Self.failure { () async throws(StateError) in try await paused.write([.delete(TokenID(namespace: "payments", name: "b"))], expectedSerial: 2) }
        if case .fenced(let holder, _)? = refused {
            #expect(holder == "replica-b")
        } else {
            Issue.record("expected a fenced write, got \(String(describing: refused))")
        }
        #expect(refused?.description.contains("no longer holds the state lock") == true)
        let state = try await successor.load()
        #expect(state.serial == 2)
        #expect(Set(state.tokens.keys.map(\.name)) == ["a", "b"])
        // Nor can it take the lock back while replica-b's lease runs.
        await #expect(throws: StateError.self) {
            _ = try await paused.acquireLock(LockRequest(holder: "replica-a", host: "node-1", processID: 10, ttl: ttl), now: later)
        }
        // The holder renewing keeps its epoch; a writer that never took the lease (plan --out's audit) is not fenced.
        _ = try await successor.acquireLock(LockRequest(holder: "replica-b", host: "node-2", processID: 20, ttl: ttl), now: later + TokenDuration(seconds: 5))
        #expect(try #require(await successor.leaseEpoch) == firstEpoch + 1)
        let bystander = try PostgresStateStore(url: url)
        #expect(try await bystander.write([], expectedSerial: 2) == 3)
    }

    @Test func concurrentWritersNeverLoseAnUpdate() async throws {
        let url = try PostgresTestCluster.shared().createDatabase(prefix: "race")
        let stores = try (0..<4).map { _ in try PostgresStateStore(url: url) }
        // Each store reads the serial and writes expecting it; exactly one writer wins each serial.
        var wins = 0
        for round in 0..<5 {
            let serial = try await stores[0].serial()
            let results = await withTaskGroup(of: Bool.self) { group in
                for (index, store) in stores.enumerated() {
                    group.addTask {
                        (try? await store.write([.upsert(StateStoreConformance.token("r\(round)-\(index)"))], expectedSerial: serial)) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            wins += results.filter { $0 }.count
        }
        #expect(try await stores[1].load().tokens.count == wins)
    }

    @Test func anUnreachableServerIsAClearError() async throws {
        let store = try PostgresStateStore(url: "postgres://nobody:secret-password@127.0.0.1:1/none?sslmode=disable")
        let error = await Self.failure { () async throws(StateError) in try await store.load() }
        #expect(error?.description.contains("postgres://nobody@127.0.0.1:1/none") == true, "\(String(describing: error))")
        #expect(error?.description.contains("secret-password") == false)
        #expect(throws: StateError.self) { try PostgresStateStore(url: "mysql://x@y/z") }
    }
}
