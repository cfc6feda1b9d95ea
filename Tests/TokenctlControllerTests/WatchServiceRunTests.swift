import Foundation
import Logging
import Synchronization
import Testing
import TokenctlController
import TokenctlModel

private let quietLogger = Logger(label: "tokenctl.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A scripted pass: counts calls, keeps each request, and answers from a script (the last answer repeats).
private actor ScriptedPass {
    private(set) var requests: [PassRequest] = []
    private(set) var times: [Double] = []
    private let script: @Sendable (Int, PassRequest) -> PassOutcome

    init(script: @escaping @Sendable (Int, PassRequest) -> PassOutcome) { self.script = script }

    var count: Int { requests.count }

    func run(_ request: PassRequest) -> PassOutcome {
        requests.append(request)
        times.append(Date().timeIntervalSince1970)
        return script(requests.count, request)
    }
}

/// Waits (polling) until `condition` holds or `timeout` seconds pass.
private func eventually(timeout: Double, _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return await condition()
}

@Suite struct WatchServiceRunTests {
    @Test(.timeLimit(.minutes(1)))
    func runsPassesUntilCancelled() async throws {
        let scripted = ScriptedPass { number, request in
            number == 1
                ? .unreachable("state locked")
                : PassOutcome(result: .success, stateReachable: true, nextDueAt: request.now + secs(1))
        }
        let health = ControllerHealth(staleAfter: 660)
        let books = Mutex<[RetryBook]>([])
        let watch = WatchService(pass: { await scripted.run($0) }, schedule: WakeSchedule(interval: 300), health: health,
                                 metrics: ControllerMetrics(), logger: quietLogger, onPass: { book in books.withLock { $0.append(book) } })
        let ended = Mutex(false)
        let started = Date()
        let task = Task {
            try await watch.run()
            ended.withLock { $0 = true }
        }
        // Wait for a few passes. Other suites run beside this one and can starve the cooperative threads, so the
        // bounds below are about order and lower limits (the loop never wakes early), not wall-clock upper limits.
        let threePasses = await eventually(timeout: 30) { await scripted.count >= 3 }
        try #require(threePasses, "three passes did not run within 30 s")
        let passesBeforeCancel = await scripted.count
        task.cancel()

        let stopped = await eventually(timeout: 15) { ended.withLock { $0 } }
        #expect(stopped, "the watch loop did not end after its task was cancelled")
        if stopped { try await task.value }
        // 300 s is the interval: the passes came from the due moments, not from it.
        #expect(Date().timeIntervalSince(started) < 60)

        // 1 failed pass (retried after 1 s), then a pass about every second as things fall due.
        let passes = await scripted.count
        #expect(passes >= passesBeforeCancel && passes <= passesBeforeCancel + 1)
        #expect(books.withLock { $0.count } == passes)

        // The failed pass is retried after 1 s; then the loop wakes when something falls due (≤ 1 s), not after the
        // 300 s interval, and never sooner than the minimum sleep.
        let times = await scripted.times
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        try #require(gaps.count >= 2)
        #expect(gaps[0] >= 0.95)
        #expect(gaps.allSatisfy { $0 >= 0.15 }, "gaps between passes: \(gaps)")
        let requests = await scripted.requests
        #expect(requests.allSatisfy { $0.deferred.isEmpty })
        #expect(zip(requests.dropFirst(), requests).allSatisfy { $0.now >= $1.now })

        let snapshot = health.snapshot
        #expect(snapshot.lastResult == .success)
        #expect(snapshot.stateReachable)
        #expect(snapshot.lastError == nil)
        let lastSuccess = try #require(snapshot.lastSuccessAt)
        #expect(abs(lastSuccess - Date().timeIntervalSince1970) < 60)
        #expect(health.readiness(at: Date().timeIntervalSince1970).ready)

        // No more passes after the loop ended.
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(await scripted.count == passes)
    }
}

/// A clock that moves only when the loop sleeps: passes run back to back in real time, at exact virtual moments.
private final class VirtualClock: Sendable {
    let seconds = Mutex(1_796_040_000.5)

    func read() -> Double { seconds.withLock { $0 } }

    func sleep(_ delay: Double) async throws {
        try Task.checkCancellation()
        seconds.withLock { $0 += delay }
        await Task.yield()
    }
}

@Suite struct WatchServiceVirtualTimeTests {
    @Test(.timeLimit(.minutes(1)))
    func aFailingChangeIsDeferredDuringItsBackoffAndRetriedAfterIt() async throws {
        // Pass 1: the change for default/api fails (backoff 2 s), and something falls due 1 s later. Pass 2 comes
        // inside the backoff and must defer default/api; pass 3 comes when the backoff ends and must not.
        let clock = VirtualClock()
        let requests = Mutex<[PassRequest]>([])
        let health = ControllerHealth(staleAfter: 660)
        let books = Mutex<[RetryBook]>([])
        let watch = WatchService(
            pass: { request in
                let count = requests.withLock { $0.append(request); return $0.count }
                if count == 3 { withUnsafeCurrentTask { $0?.cancel() } }
                return count == 1
                    ? PassOutcome(result: .partial, stateReachable: true,
                                  changes: [.init(key: "default/api", action: .rotate, failure: "store unwritable")],
                                  plannedKeys: ["default/api"], nextDueAt: request.now + secs(1))
                    : PassOutcome(result: .success, stateReachable: true, plannedKeys: ["default/api"],
                                  deferredCount: request.deferred.count, nextDueAt: request.now + secs(60))
            },
            schedule: WakeSchedule(interval: 300), health: health, metrics: ControllerMetrics(), logger: quietLogger,
            clock: { clock.read() }, sleep: { try await clock.sleep($0) }, onPass: { book in books.withLock { $0.append(book) } })
        try await Task { try await watch.run() }.value

        let seen = requests.withLock { $0 }
        try #require(seen.count == 3)
        #expect(seen[0].deferred.isEmpty)
        #expect(seen[1].now == seen[0].now + secs(1) && seen[1].deferred == ["default/api"], "inside the backoff")
        #expect(seen[2].now == seen[0].now + secs(2) && seen[2].deferred.isEmpty, "the retry comes when the backoff ends")
        let first = try #require(books.withLock { $0.first })
        #expect(first.entries["default/api"]?.failures == 1)
        #expect(first.entries["default/api"]?.nextAttemptAt == seen[0].now + secs(2))
        #expect(health.snapshot.needsAttention.map(\.key) == ["default/api"], "planned and not yet succeeded")
        #expect(health.readiness(at: clock.read()).reason.contains("1 token(s) need attention"))
    }

    @Test(.timeLimit(.minutes(1)))
    func passesComeWhenThingsFallDueAndAFailureBacksOffExactly() async throws {
        let clock = VirtualClock()
        let moments = Mutex<[Double]>([])
        // Pass 1 cannot reach the state; then each pass says something falls due 5 s after its `now`; pass 6 ends the
        // loop (it cancels the task it runs in, as a shutdown would).
        let watch = WatchService(
            pass: { request in
                let count = moments.withLock { $0.append(clock.read()); return $0.count }
                if count == 6 { withUnsafeCurrentTask { $0?.cancel() } }
                return count == 1 ? .unreachable("state locked")
                    : PassOutcome(result: .success, stateReachable: true, nextDueAt: request.now + secs(5))
            },
            schedule: WakeSchedule(interval: 300), health: ControllerHealth(staleAfter: 660), metrics: ControllerMetrics(),
            logger: quietLogger, clock: { clock.read() }, sleep: { try await clock.sleep($0) })
        let realStart = Date()
        try await Task { try await watch.run() }.value

        let times = moments.withLock { $0 }
        #expect(times.count == 6)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        // The failed pass is retried after exactly 1 s; then each pass comes when something falls due, 5 s after the
        // whole second the previous pass ran in (its `now`; the first of them ran half a second past one), never after the
        // 300 s interval.
        #expect(gaps == [1, 4.5, 5, 5, 5], "gaps: \(gaps)")
        #expect(Date().timeIntervalSince(realStart) < 5, "no real time is spent waiting")
    }
}
