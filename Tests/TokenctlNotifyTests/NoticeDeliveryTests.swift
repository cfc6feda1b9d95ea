import Foundation
import Logging
import Synchronization
import TestSupport
import Testing
import TokenctlDrivers
import TokenctlModel
import TokenctlNotify
import TokenctlPlanner
import TokenctlSQLite
import TokenctlState

/// Delivery against a real local receiver and a real SQLite outbox: every way a receiver can fail is a clear, recorded
/// failure with backoff; nothing it says and nothing of the URL reaches the error.
@Suite(.serialized) struct NoticeDeliveryTests {
    let now = Timestamp(secondsSinceEpoch: 1_796_040_000)
    let location = SourceLocation(file: "n.yaml", line: 1, column: 1)

    func notice(_ name: String) -> Notice {
        Notice(notifier: "security", event: .expiring, key: "expiring/apps/\(name)/1796400000/3d", token: TokenID(namespace: "apps", name: name),
               owner: "team-apps", issuer: "local", version: 1, credentialID: nil, at: Timestamp(secondsSinceEpoch: 1_796_400_000),
               leadTime: TokenDuration(seconds: 3 * 86_400), reason: "apps/\(name) expires soon")
    }

    func notifier(timeout: Int64 = 2, format: Notifier.Format = .json) -> Notifier {
        Notifier(metadata: ResourceMetadata(name: "security", location: location), url: .environment("HOOK_URL"), format: format,
                 signingKey: .environment("HOOK_KEY"), events: Notifier.Events(expiring: [TokenDuration(seconds: 3 * 86_400)]),
                 timeout: TokenDuration(seconds: timeout))
    }

    /// An outbox in a scratch directory holding `names`' notices, and a delivery whose secrets come from `secrets`.
    func setUp(_ names: [String], secrets: [String: String]) async throws -> (SQLiteStateStore, NoticeDelivery, WebhookClient, String) {
        let directory = Scratch.directory("tokenctl-notify")
        let store = try SQLiteStateStore(directory: directory, mode: .readWrite)
        let encoder = JSONEncoder()
        let records = try names.map { name in
            NoticeRecord(notifier: "security", key: notice(name).key, body: String(decoding: try encoder.encode(notice(name)), as: UTF8.self),
                         queuedAt: now)
        }
        _ = try await store.queueNotices(records)
        let client = WebhookClient()
        let delivery = NoticeDelivery(client: client, resolve: { reference, what in
            guard case .environment(let name) = reference, let value = secrets[name] else { throw Missing(what: what) }
            return value
        }, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (store, delivery, client, directory)
    }

    struct Missing: Error, CustomStringConvertible {
        var what: String
        var description: String { "\(what) is not set" }
    }

    func deliverOnce(answer: @escaping WebhookReceiver.Answer, headers: [String: String] = [:], timeout: Int64 = 2, stall: Double = 0)
        async throws -> (round: NoticeDelivery.Round, record: NoticeRecord?, requests: Int, seconds: Double) {
        let receiver = try WebhookReceiver.start(answer: answer)
        defer { receiver.stop() }
        receiver.answerHeaders(headers)
        receiver.stallAfterHeader(for: stall)
        let (store, delivery, client, directory) = try await setUp(["a"], secrets: ["HOOK_URL": receiver.url + "/hook/T0SECRET", "HOOK_KEY": "k"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let started = Date()
        let round = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: ["security": notifier(timeout: timeout)],
                                           outbox: store, now: now)
        let seconds = Date().timeIntervalSince(started)
        await client.shutdown()
        let pending = try await store.pendingNotices(dueBy: Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 100_000), limit: 10)
        return (round, pending.first, receiver.requests.count, seconds)
    }

    @Test func anAcceptedBatchIsMarkedSentAndNotSentAgain() async throws {
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        let (store, delivery, client, directory) = try await setUp(["a", "b"], secrets: ["HOOK_URL": receiver.url + "/hook", "HOOK_KEY": "k"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let notifiers = ["security": notifier()]
        let round = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: notifiers, outbox: store, now: now)
        #expect(round == NoticeDelivery.Round(sent: 2, failed: 0, skipped: 0))
        #expect(receiver.requests.count == 1, "one batch per notifier")
        let signature = try #require(receiver.requests.first?.headers["x-tokenctl-signature"])
        #expect(NoticeSignature.verify(header: signature, body: Array((receiver.requests.first?.body ?? "").utf8), key: Array("k".utf8)))
        #expect(!NoticeSignature.verify(header: signature, body: Array(((receiver.requests.first?.body ?? "") + " ").utf8), key: Array("k".utf8)))
        #expect(try await store.pendingNotices(dueBy: now, limit: 10).isEmpty)
        let again = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: notifiers, outbox: store, now: now)
        #expect(again == NoticeDelivery.Round())
        #expect(receiver.requests.count == 1)
        await client.shutdown()
    }

    @Test func aFailingReceiverIsRecordedWithBackoff() async throws {
        let result = try await deliverOnce(answer: { _ in (500, 0) })
        #expect(result.round.failed == 1 && result.requests == 1)
        let record = try #require(result.record)
        #expect(record.attempts == 1 && record.lastError == "the receiver answered 500")
        #expect(record.nextAttemptAt.secondsSinceEpoch == now.secondsSinceEpoch + NoticeDelivery.firstBackoff)
    }

    @Test func tooManyRequestsWaitsAsLongAsTheReceiverAsks() async throws {
        let result = try await deliverOnce(answer: { _ in (429, 0) }, headers: ["Retry-After": "120"])
        let record = try #require(result.record)
        #expect(record.lastError == "the receiver asked to slow down (429)")
        #expect(record.nextAttemptAt.secondsSinceEpoch == now.secondsSinceEpoch + 120)
    }

    @Test func aRedirectIsNotFollowed() async throws {
        let result = try await deliverOnce(answer: { _ in (301, 0) }, headers: ["Location": "http://127.0.0.1:9/elsewhere"])
        #expect(result.requests == 1)
        #expect(result.record?.lastError?.contains("redirected (301); tokenctl does not follow redirects") == true)
    }

    @Test func aSlowReceiverCostsItsTimeoutAndNoMore() async throws {
        let result = try await deliverOnce(answer: { _ in (200, 4) }, timeout: 1)
        #expect(result.record?.lastError == "the receiver did not answer within 1s")
        #expect(result.seconds < 3, "took \(result.seconds)s")
    }

    @Test func aReceiverThatStallsAfterItsHeaderCostsItsTimeoutAndNoMore() async throws {
        let result = try await deliverOnce(answer: { _ in (200, 0) }, timeout: 1, stall: 5)
        #expect(result.record?.lastError == "the receiver did not answer within 1s")
        #expect(result.seconds < 3, "took \(result.seconds)s")
    }

    @Test func aReceiverThatIsDownIsUnreachable() async throws {
        let receiver = try WebhookReceiver.start()
        let url = receiver.url
        receiver.stop()
        let (store, delivery, client, directory) = try await setUp(["a"], secrets: ["HOOK_URL": url + "/hook", "HOOK_KEY": "k"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let round = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: ["security": notifier()],
                                           outbox: store, now: now)
        await client.shutdown()
        #expect(round.failed == 1)
        let record = try #require(try await store.pendingNotices(dueBy: Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 10), limit: 1).first)
        #expect(record.lastError?.hasPrefix("the receiver could not be reached") == true, "\(record.lastError ?? "-")")
        #expect(record.lastError?.contains("127.0.0.1") == false, "the URL's address stays out of the error")
    }

    @Test func badOrMissingURLsAreClearAndNeverEchoed() async throws {
        let (store, delivery, client, directory) = try await setUp(["a"], secrets: ["HOOK_URL": "hooks.example/T0SECRET", "HOOK_KEY": "k"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: ["security": notifier()], outbox: store, now: now)
        var record = try #require(try await store.pendingNotices(dueBy: Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 10), limit: 1).first)
        #expect(record.lastError == "the webhook URL is not an absolute http or https URL")
        // The production resolver: it names the variable, never a value.
        let (missingStore, _, missingClient, missingDirectory) = try await setUp(["a"], secrets: [:])
        let missing = NoticeDelivery(client: missingClient, resolve: { reference, what throws in
            try DriverContext.value(of: reference, what: what, environment: ["HOOK_KEY": "k"])
        }, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { try? FileManager.default.removeItem(atPath: missingDirectory) }
        _ = await missing.deliver(try await missingStore.pendingNotices(dueBy: now, limit: 10), notifiers: ["security": notifier()],
                                  outbox: missingStore, now: now)
        record = try #require(try await missingStore.pendingNotices(dueBy: Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + 10), limit: 1).first)
        #expect(record.lastError == "the environment variable HOOK_URL (the webhook URL of notifier 'security') is not set")
        await client.shutdown()
        await missingClient.shutdown()
    }

    @Test func noticesOfANotifierNoLongerDeclaredWait() async throws {
        let (store, delivery, client, directory) = try await setUp(["a"], secrets: [:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let round = await delivery.deliver(try await store.pendingNotices(dueBy: now, limit: 10), notifiers: [:], outbox: store, now: now)
        await client.shutdown()
        #expect(round == NoticeDelivery.Round(sent: 0, failed: 0, skipped: 1))
        #expect(try await store.pendingNotices(dueBy: now, limit: 10).count == 1)
    }

    @Test func backoffDoublesUpToItsCapAndHonoursRetryAfterUpToAnHour() {
        #expect((1...10).map { NoticeDelivery.backoff(afterAttempts: $0, retryAfter: nil) } == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300])
        #expect(NoticeDelivery.backoff(afterAttempts: 1, retryAfter: 90) == 90)
        #expect(NoticeDelivery.backoff(afterAttempts: 1, retryAfter: 86_400) == 3_600)
    }
}

/// The dispatcher delivers only on the replica that leads, so replicas sharing one state never each send.
@Suite struct NoticeDispatcherTests {
    @Test func onlyTheLeaderDelivers() async throws {
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        let tests = NoticeDeliveryTests()
        let (store, delivery, client, directory) = try await tests.setUp(["a"], secrets: ["HOOK_URL": receiver.url + "/hook", "HOOK_KEY": "k"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let leading = Flag(false)
        let notifier = tests.notifier()
        let dispatcher = NoticeDispatcher(source: { (["security": notifier], leading.isSet) }, openOutbox: { store },
                                          delivery: delivery, clock: { tests.now },
                                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        await dispatcher.round(store)
        #expect(receiver.requests.isEmpty, "a standby replica sends nothing")
        #expect(try await store.noticeSummary().pending == 1)
        leading.set(true)
        await dispatcher.round(store)
        await dispatcher.round(store)
        #expect(receiver.requests.count == 1, "the leader sends it, once")
        #expect(try await store.noticeSummary() == NoticeOutboxSummary(pending: 0, failing: 0, oldestPendingSince: nil, sent: 1))
        await client.shutdown()
    }
}

/// A flag test closures share.
final class Flag: Sendable {
    private let value: Mutex<Bool>
    init(_ value: Bool) { self.value = Mutex(value) }
    var isSet: Bool { value.withLock { $0 } }
    func set(_ new: Bool) { value.withLock { $0 = new } }
}
