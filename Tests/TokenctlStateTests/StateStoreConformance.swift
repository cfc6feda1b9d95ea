import Foundation
import Testing
import TokenctlModel
import TokenctlState

/// The behaviour every StateStore backend must have. Each backend's test file runs every `Check` with its own factory.
struct StateStoreConformance {
    /// Makes a fresh, empty store.
    let makeStore: @Sendable () async throws -> any StateStore & AuditLogStore & NoticeOutbox

    static let now = Timestamp(secondsSinceEpoch: 1_796_040_000)  // 2026-11-30T12:00:00Z

    static func token(_ name: String, versions: Int = 1, namespace: String = "payments") -> RecordedToken {
        let issued = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - 86_400)
        return RecordedToken(
            id: TokenID(namespace: namespace, name: name), issuer: "local", owner: "team-payments", lifespan: .finite(TokenDuration(seconds: 90 * 86_400)),
            rotationEvery: TokenDuration(seconds: 30 * 86_400), overlap: TokenDuration(seconds: 3_600), window: "Mon-Fri 09:00-17:00 UTC",
            versions: (1...versions).map { version in
                CredentialVersion(
                    version: version, credentialID: "id-\(name)-\(version)", fingerprint: "sha256:\(version)", scopes: ["orders:read", "orders:write"],
                    issuedAt: issued, expiresAt: version == versions ? issued + TokenDuration(seconds: 90 * 86_400) : nil,
                    status: version == versions ? .active : .retiring, retireAfter: version == versions ? nil : now,
                    deliveries: [DeliveryRecord(store: "vault", key: "\(namespace)/\(name)", contentFingerprint: "fp\(version)", deliveredAt: issued)],
                    lastUsedAt: version == versions ? now : nil, intentKey: "intent-\(name)-\(version)")
            })
    }

    func emptyStoreHasSerialZero() async throws {
        let store = try await makeStore()
        #expect(try await store.serial() == 0)
        #expect(try await store.load().tokens.isEmpty)
    }

    func writesRoundTripEveryField() async throws {
        let store = try await makeStore()
        let first = Self.token("orders-api-ci", versions: 2)
        let second = RecordedToken(id: TokenID(namespace: "default", name: "forever"), issuer: "local", owner: "o", lifespan: .never,
                                   rotationEvery: nil, versions: [])
        let serial = try await store.write([.upsert(first), .upsert(second)], expectedSerial: 0)
        #expect(serial == 1)
        let state = try await store.load()
        #expect(state.serial == 1)
        #expect(state.tokens[first.id] == first)
        #expect(state.tokens[second.id] == second)
    }

    func everyWriteIncrementsTheSerial() async throws {
        let store = try await makeStore()
        for expected in 1...5 {
            #expect(try await store.write([.upsert(Self.token("t\(expected)"))], expectedSerial: nil) == Int64(expected))
        }
        #expect(try await store.serial() == 5)
    }

    func staleSerialWritesNothing() async throws {
        let store = try await makeStore()
        _ = try await store.write([.upsert(Self.token("a"))], expectedSerial: 0)
        await #expect(throws: StateError.serialMismatch(expected: 0, actual: 1)) {
            try await store.write([.upsert(Self.token("b"))], expectedSerial: 0)
        }
        let state = try await store.load()
        #expect(state.serial == 1)
        #expect(state.tokens.keys.map(\.name) == ["a"])
    }

    func upsertReplacesVersionsAndDeleteForgets() async throws {
        let store = try await makeStore()
        _ = try await store.write([.upsert(Self.token("a", versions: 3))], expectedSerial: nil)
        var replaced = Self.token("a", versions: 1)
        replaced.versions[0].status = .revoked
        _ = try await store.write([.upsert(replaced)], expectedSerial: nil)
        #expect(try await store.load().tokens[replaced.id] == replaced)
        _ = try await store.write([.delete(replaced.id)], expectedSerial: nil)
        #expect(try await store.load().tokens.isEmpty)
    }

    func lockExcludesOthersAndLapses() async throws {
        let store = try await makeStore()
        let alice = LockRequest(holder: "alice", host: "laptop", processID: 100, ttl: TokenDuration(seconds: 60))
        let bob = LockRequest(holder: "bob", host: "ci", processID: 200, ttl: TokenDuration(seconds: 60))
        let taken = try await store.acquireLock(alice, now: Self.now)
        #expect(taken.holder == "alice" && taken.expiresAt == Self.now + TokenDuration(seconds: 60))
        #expect(try await store.currentLock(now: Self.now) == taken)
        await #expect(throws: StateError.locked(taken)) { try await store.acquireLock(bob, now: Self.now + TokenDuration(seconds: 30)) }
        // The same holder renews.
        let renewed = try await store.acquireLock(alice, now: Self.now + TokenDuration(seconds: 30))
        #expect(renewed.expiresAt == Self.now + TokenDuration(seconds: 90))
        // A lapsed lock is taken over, so a crashed holder never blocks forever.
        let later = Self.now + TokenDuration(seconds: 120)
        #expect(try await store.currentLock(now: later) == nil)
        #expect(try await store.acquireLock(bob, now: later).holder == "bob")
        try await store.releaseLock(holder: "alice", processID: 100)
        #expect(try await store.currentLock(now: later)?.holder == "bob")
        try await store.releaseLock(holder: "bob", processID: 200)
        #expect(try await store.currentLock(now: later) == nil)
    }

    func holdsManyTokens() async throws {
        let store = try await makeStore()
        let tokens = (0..<2_000).map { Self.token("svc-\($0)", namespace: "team-\($0 % 7)") }
        _ = try await store.write(tokens.map { .upsert($0) }, expectedSerial: 0)
        let state = try await store.load()
        #expect(state.tokens.count == 2_000)
        #expect(state.tokens[tokens[1234].id] == tokens[1234])
    }

    func settingsPersistWithoutChangingTheSerial() async throws {
        let store = try await makeStore()
        #expect(try await store.setting("manifest_roots") == nil)
        try await store.setSetting("manifest_roots", to: "[\"a\"]")
        try await store.setSetting("manifest_roots", to: "[\"a\",\"b\"]")
        #expect(try await store.setting("manifest_roots") == "[\"a\",\"b\"]")
        #expect(try await store.setting("serial") == nil, "settings are their own namespace")
        #expect(try await store.serial() == 0)
    }

    func noticesAreQueuedOnceRetriedAndSentOnce() async throws {
        let store = try await makeStore()
        let at = { (seconds: Int64) in Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch + seconds) }
        let first = NoticeRecord(notifier: "security", key: "expiring/payments/a/1796400000/3d", body: #"{"event":"expiring"}"#, queuedAt: at(0))
        let second = NoticeRecord(notifier: "security", key: "ghost/local/id-9", body: #"{"event":"ghost"}"#, queuedAt: at(1))
        let otherNotifier = NoticeRecord(notifier: "payments", key: first.key, body: first.body, queuedAt: at(2))
        #expect(try await store.queueNotices([first, second, otherNotifier]) == [first, second, otherNotifier])
        // Queued again (a restart, another replica): nothing new.
        #expect(try await store.queueNotices([first, second]).isEmpty)
        #expect(try await store.pendingNotices(dueBy: at(10), limit: 10).map(\.id) == [first.id, second.id, otherNotifier.id])
        #expect(try await store.pendingNotices(dueBy: at(10), limit: 2).count == 2)

        try await store.noticesFailed([first.id], error: "receiver answered 503", nextAttemptAt: at(60))
        try await store.noticesFailed([first.id], error: "receiver answered 429", nextAttemptAt: at(120))
        #expect(try await store.pendingNotices(dueBy: at(100), limit: 10).map(\.id) == [second.id, otherNotifier.id])
        let retried = try #require(try await store.pendingNotices(dueBy: at(120), limit: 10).first)
        #expect(retried.id == first.id && retried.attempts == 2 && retried.lastError == "receiver answered 429")
        #expect(retried.body == first.body && retried.queuedAt == first.queuedAt && retried.nextAttemptAt == at(120))
        #expect(try await store.noticeSummary() == NoticeOutboxSummary(pending: 3, failing: 1, oldestPendingSince: at(0), sent: 0))

        try await store.noticesDelivered([first.id, second.id], at: at(130))
        #expect(try await store.pendingNotices(dueBy: at(1_000), limit: 10).map(\.id) == [otherNotifier.id])
        // A late failure report for a notice already sent changes nothing.
        try await store.noticesFailed([first.id], error: "late", nextAttemptAt: at(200))
        #expect(try await store.pendingNotices(dueBy: at(1_000), limit: 10).map(\.id) == [otherNotifier.id])
        #expect(try await store.queueNotices([first]).isEmpty, "a sent notice is never queued again")
        #expect(try await store.noticeSummary() == NoticeOutboxSummary(pending: 1, failing: 0, oldestPendingSince: at(2), sent: 2))
        #expect(try await store.serial() == 0, "the outbox is not part of the recorded state")

        // Claims: one sender at a time gets a record, only of the notifiers asked for, and again once the claim lapses.
        let third = NoticeRecord(notifier: "security", key: "ghost/local/id-10", body: "{}", queuedAt: at(3))
        _ = try await store.queueNotices([third])
        #expect(try await store.claimNotices(notifiers: ["nobody"], dueBy: at(1_000), limit: 10, claimUntil: at(2_000)).isEmpty)
        let claimed = try await store.claimNotices(notifiers: ["payments", "security"], dueBy: at(1_000), limit: 10, claimUntil: at(2_000))
        #expect(claimed.map(\.id) == [otherNotifier.id, third.id])
        #expect(try await store.claimNotices(notifiers: ["payments", "security"], dueBy: at(1_000), limit: 10, claimUntil: at(2_000)).isEmpty,
                "claimed records are not handed out twice")
        #expect(try await store.claimNotices(notifiers: ["payments", "security"], dueBy: at(2_000), limit: 1, claimUntil: at(3_000)).count == 1,
                "a lapsed claim (a sender that died) is claimed again")
        #expect(try await store.noticeSummary().pending == 2, "claiming is not sending")
    }

    func auditIsAppendOnlyInSequenceAndLeavesTheSerial() async throws {
        let store = try await makeStore()
        #expect(try await store.lastAuditRecord() == nil)
        let first = AuditRecord(sequence: 1, json: "{\"a\":1}", previousHash: "", hash: "h1")
        let second = AuditRecord(sequence: 2, json: "{\"a\":2}", previousHash: "h1", hash: "h2")
        #expect(try await store.auditAnchor() == nil)
        try await store.appendAudit([first, second], anchor: "anchor-2")
        #expect(try await store.auditRecords() == [first, second])
        #expect(try await store.lastAuditRecord() == second)
        #expect(try await store.auditAnchor() == "anchor-2")
        #expect(try await store.serial() == 0, "recording a request must not make saved plans stale")
        await #expect(throws: StateError.self) {
            try await store.appendAudit([AuditRecord(sequence: 5, json: "{}", previousHash: "h2", hash: "h5")], anchor: "anchor-5")
        }
        #expect(try await store.auditRecords().count == 2)
        #expect(try await store.auditAnchor() == "anchor-2", "a refused append leaves the anchor where it was")
        try await store.appendAudit([AuditRecord(sequence: 3, json: "{}", previousHash: "h2", hash: "h3")], anchor: nil)
        #expect(try await store.auditAnchor() == "anchor-2", "an append without an anchor leaves it")
    }

    func resealReplacesOnlyTheSealsOfUnchangedEntries() async throws {
        let store = try await makeStore()
        let original = [AuditRecord(sequence: 1, json: "{\"a\":1}", previousHash: "", hash: "h1"),
                        AuditRecord(sequence: 2, json: "{\"a\":2}", previousHash: "h1", hash: "h2")]
        try await store.appendAudit(original, anchor: "anchor-2")
        let resealed = [AuditRecord(sequence: 1, json: "{\"a\":1}", previousHash: "", hash: "k1"),
                        AuditRecord(sequence: 2, json: "{\"a\":2}", previousHash: "k1", hash: "k2"),
                        AuditRecord(sequence: 3, json: "{\"rekey\":true}", previousHash: "k2", hash: "k3")]

        await #expect(throws: StateError.self, "an entry's content never changes") {
            try await store.resealAudit([resealed[0], AuditRecord(sequence: 2, json: "{\"a\":9}", previousHash: "k1", hash: "k2")],
                                        anchor: "forged")
        }
        await #expect(throws: StateError.self, "every existing entry must be re-sealed") {
            try await store.resealAudit([resealed[0]], anchor: "short")
        }
        await #expect(throws: StateError.self, "entries stay in sequence") {
            try await store.resealAudit([resealed[1], resealed[0]], anchor: "swapped")
        }
        #expect(try await store.auditRecords() == original, "a refused re-seal changes nothing")
        #expect(try await store.auditAnchor() == "anchor-2")

        try await store.resealAudit(resealed, anchor: "anchor-3")
        #expect(try await store.auditRecords() == resealed)
        #expect(try await store.auditAnchor() == "anchor-3")
        #expect(try await store.serial() == 0)
    }

    /// Every check, so that each backend runs them all as one parameterized test and none can be left out.
    enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case emptyStoreHasSerialZero, writesRoundTripEveryField, everyWriteIncrementsTheSerial, staleSerialWritesNothing
        case upsertReplacesVersionsAndDeleteForgets, lockExcludesOthersAndLapses, holdsManyTokens, auditIsAppendOnly
        case settingsPersistWithoutChangingTheSerial, resealReplacesOnlyTheSealsOfUnchangedEntries
        case noticesAreQueuedOnceRetriedAndSentOnce

        var testDescription: String { rawValue }
    }

    func run(_ check: Check) async throws {
        switch check {
        case .emptyStoreHasSerialZero: try await emptyStoreHasSerialZero()
        case .writesRoundTripEveryField: try await writesRoundTripEveryField()
        case .everyWriteIncrementsTheSerial: try await everyWriteIncrementsTheSerial()
        case .staleSerialWritesNothing: try await staleSerialWritesNothing()
        case .upsertReplacesVersionsAndDeleteForgets: try await upsertReplacesVersionsAndDeleteForgets()
        case .lockExcludesOthersAndLapses: try await lockExcludesOthersAndLapses()
        case .holdsManyTokens: try await holdsManyTokens()
        case .auditIsAppendOnly: try await auditIsAppendOnlyInSequenceAndLeavesTheSerial()
        case .settingsPersistWithoutChangingTheSerial: try await settingsPersistWithoutChangingTheSerial()
        case .resealReplacesOnlyTheSealsOfUnchangedEntries: try await resealReplacesOnlyTheSealsOfUnchangedEntries()
        case .noticesAreQueuedOnceRetriedAndSentOnce: try await noticesAreQueuedOnceRetriedAndSentOnce()
        }
    }
}
