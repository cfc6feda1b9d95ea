import Testing
@testable import TokenctlController
import TokenctlModel
import TokenctlPlanner

@Suite struct WatchServiceUpdateTests {
    @Test func failuresAreRecorded() throws {
        var book = RetryBook()
        let outcome = PassOutcome(result: .partial, stateReachable: true,
                                  changes: [.init(key: "default/a", action: .rotate, failure: "store unwritable"),
                                            .init(key: "default/b", action: .issue, failure: nil)],
                                  plannedKeys: ["default/a", "default/b"])
        WatchService.update(&book, with: outcome, now: ts(500))
        let entry = try #require(book.entries["default/a"])
        #expect(entry.failures == 1)
        #expect(entry.action == "rotate")
        #expect(entry.lastError == "store unwritable")
        #expect(entry.nextAttemptAt == ts(502))
        #expect(book.entries["default/b"] == nil)

        WatchService.update(&book, with: outcome, now: ts(510))
        #expect(book.entries["default/a"]?.failures == 2)
        #expect(book.entries["default/a"]?.nextAttemptAt == ts(514))
    }

    @Test func successesClear() {
        var book = RetryBook()
        book.recordFailure(key: "default/a", action: "rotate", error: "e", now: ts(0))
        book.recordFailure(key: "default/b", action: "rotate", error: "e", now: ts(0))
        let outcome = PassOutcome(result: .success, stateReachable: true,
                                  changes: [.init(key: "default/a", action: .rotate, failure: nil)],
                                  plannedKeys: ["default/a", "default/b"])
        WatchService.update(&book, with: outcome, now: ts(10))
        #expect(Set(book.entries.keys) == ["default/b"])
    }

    @Test func deferredKeysStillPlannedAreKept() {
        var book = RetryBook()
        book.recordFailure(key: "default/a", action: "rotate", error: "e", now: ts(0))
        let before = book
        // A pass that deferred default/a: no change for it, but it is still planned.
        WatchService.update(&book, with: PassOutcome(result: .success, stateReachable: true, plannedKeys: ["default/a"], deferredCount: 1),
                            now: ts(1))
        #expect(book == before)
    }

    @Test func keysNoLongerPlannedAreForgotten() {
        var book = RetryBook()
        book.recordFailure(key: "default/a", action: "rotate", error: "e", now: ts(0))
        book.recordFailure(key: "ghost github/cred-1", action: "ghost", error: "e", now: ts(0))
        WatchService.update(&book, with: PassOutcome(result: .success, stateReachable: true, plannedKeys: ["ghost github/cred-1"]),
                            now: ts(1))
        #expect(Set(book.entries.keys) == ["ghost github/cred-1"])
        WatchService.update(&book, with: PassOutcome(result: .success, stateReachable: true), now: ts(2))
        #expect(book.entries.isEmpty)
    }

    @Test func aFailedPassChangesNothing() {
        var book = RetryBook()
        book.recordFailure(key: "default/a", action: "rotate", error: "e", now: ts(0))
        let before = book
        // Even with changes and no planned keys in it, a failed pass must not touch the book.
        let outcome = PassOutcome(result: .failed, stateReachable: false, error: "state locked",
                                  changes: [.init(key: "default/a", action: .rotate, failure: nil),
                                            .init(key: "default/z", action: .issue, failure: "boom")],
                                  plannedKeys: [])
        WatchService.update(&book, with: outcome, now: ts(100))
        #expect(book == before)
        WatchService.update(&book, with: .unreachable("no state"), now: ts(200))
        #expect(book == before)
    }
}
