import Testing
import TokenctlController
import TokenctlModel
import TokenctlPlanner

@Suite struct RetryBookTests {
    @Test func delaysDoubleFromTheBaseUpToTheCap() {
        let book = RetryBook()
        #expect(book.base == secs(2))
        #expect(book.cap == secs(300))
        let delays = (1...10).map { book.delay(afterFailures: $0).seconds }
        #expect(delays == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300])
    }

    @Test func zeroOrNegativeFailuresGiveTheBase() {
        let book = RetryBook()
        #expect(book.delay(afterFailures: 0) == secs(2))
        #expect(book.delay(afterFailures: -5) == secs(2))
    }

    @Test(arguments: [31, 32, 63, 64, 1_000, Int.max])
    func hugeFailureCountsStayAtTheCap(failures: Int) {
        #expect(RetryBook().delay(afterFailures: failures) == secs(300))
    }

    @Test func multiplicationOverflowFallsBackToTheCap() {
        let book = RetryBook(base: secs(Int64.max / 4), cap: secs(Int64.max))
        #expect(book.delay(afterFailures: 1) == secs(Int64.max / 4))
        #expect(book.delay(afterFailures: 2) == secs(Int64.max / 4 * 2))
        // 4 × (max/4) and beyond overflow: the cap, never a wrapped negative value.
        #expect(book.delay(afterFailures: 10) == secs(Int64.max))
        #expect(book.delay(afterFailures: Int.max) == secs(Int64.max))
    }

    @Test func customBaseAndCapAreHonoured() {
        let book = RetryBook(base: secs(5), cap: secs(60))
        #expect((1...6).map { book.delay(afterFailures: $0).seconds } == [5, 10, 20, 40, 60, 60])
        // A cap below the base wins.
        #expect(RetryBook(base: secs(10), cap: secs(3)).delay(afterFailures: 1) == secs(3))
    }

    @Test func recordFailureBacksOffAndKeepsTheFirstFailure() throws {
        var book = RetryBook()
        book.recordFailure(key: "default/api", action: "rotate", error: "store unwritable", now: ts(1_000))
        var entry = try #require(book.entries["default/api"])
        #expect(entry.failures == 1)
        #expect(entry.action == "rotate")
        #expect(entry.lastError == "store unwritable")
        #expect(entry.firstFailedAt == ts(1_000))
        #expect(entry.nextAttemptAt == ts(1_002))

        book.recordFailure(key: "default/api", action: "issue", error: "issuer down", now: ts(1_010))
        entry = try #require(book.entries["default/api"])
        #expect(entry.failures == 2)
        #expect(entry.action == "issue")
        #expect(entry.lastError == "issuer down")
        #expect(entry.firstFailedAt == ts(1_000))
        #expect(entry.nextAttemptAt == ts(1_014))

        book.recordFailure(key: "default/api", action: "issue", error: "issuer down", now: ts(1_020))
        #expect(book.entries["default/api"]?.nextAttemptAt == ts(1_028))
        #expect(book.entries.count == 1)
    }

    @Test func recordSuccessClearsOnlyThatToken() {
        var book = RetryBook()
        book.recordFailure(key: "default/a", action: "rotate", error: "x", now: ts(0))
        book.recordFailure(key: "default/b", action: "rotate", error: "y", now: ts(0))
        book.recordSuccess(key: "default/a")
        #expect(Set(book.entries.keys) == ["default/b"])
        // Success of an unknown key is harmless.
        book.recordSuccess(key: "default/zzz")
        #expect(Set(book.entries.keys) == ["default/b"])
        // After a success the count starts over.
        book.recordFailure(key: "default/a", action: "rotate", error: "x", now: ts(100))
        #expect(book.entries["default/a"]?.failures == 1)
        #expect(book.entries["default/a"]?.firstFailedAt == ts(100))
    }

    @Test func keepOnlyForgetsUnplannedKeys() {
        var book = RetryBook()
        for key in ["default/a", "default/b", "default/c"] {
            book.recordFailure(key: key, action: "issue", error: "e", now: ts(0))
        }
        book.keepOnly(["default/b", "default/unrelated"])
        #expect(Set(book.entries.keys) == ["default/b"])
        book.keepOnly([])
        #expect(book.entries.isEmpty)
    }

    @Test func isWaitingUntilTheNextAttempt() {
        var book = RetryBook()
        book.recordFailure(key: "default/api", action: "rotate", error: "e", now: ts(1_000))   // next attempt at 1002
        #expect(book.isWaiting("default/api", now: ts(1_000)))
        #expect(book.isWaiting("default/api", now: ts(1_001)))
        #expect(!book.isWaiting("default/api", now: ts(1_002)))
        #expect(!book.isWaiting("default/api", now: ts(5_000)))
        #expect(!book.isWaiting("default/other", now: ts(1_000)))
    }

    @Test func waitingKeysAndEarliestRetry() {
        var book = RetryBook()
        #expect(book.earliestRetry == nil)
        #expect(book.waitingKeys(now: ts(0)).isEmpty)
        book.recordFailure(key: "default/a", action: "rotate", error: "e", now: ts(1_000))   // 1002
        book.recordFailure(key: "default/b", action: "rotate", error: "e", now: ts(990))
        book.recordFailure(key: "default/b", action: "rotate", error: "e", now: ts(1_000))   // 2 failures: 1004
        book.recordFailure(key: "default/c", action: "rotate", error: "e", now: ts(900))     // 902
        #expect(book.earliestRetry == ts(902))
        #expect(book.waitingKeys(now: ts(1_000)) == ["default/a", "default/b"])
        #expect(book.waitingKeys(now: ts(1_002)) == ["default/b"])
        #expect(book.waitingKeys(now: ts(1_004)).isEmpty)
        book.recordSuccess(key: "default/c")
        #expect(book.earliestRetry == ts(1_002))
    }

    @Test func keyOfATokenChangeIsTheTokenID() {
        let change = PlannedChange(action: .rotate, token: TokenID(namespace: "payments", name: "orders-api"), issuer: "github",
                                   reason: .rotationDue, detail: "age 31d ≥ every 30d")
        #expect(RetryBook.key(of: change) == "payments/orders-api")
    }

    @Test func keyOfAGhostChangeNamesIssuerAndCredential() {
        let ghost = ObservedCredential(issuer: "github", credentialID: "cred-42", hint: "tkc_…a91f")
        let change = PlannedChange(action: .ghost, token: nil, issuer: "github", reason: .unmanaged, detail: "not issued by tokenctl",
                                   ghost: ghost, retireGhost: true)
        #expect(RetryBook.key(of: change) == "ghost github/cred-42")
        // Two ghosts of the same issuer are tracked apart, and never collide with a token.
        var other = change
        other.ghost = ObservedCredential(issuer: "github", credentialID: "cred-43", hint: "tkc_…b000")
        #expect(RetryBook.key(of: other) != RetryBook.key(of: change))
        // A ghost change without its credential still yields a key.
        var bare = change
        bare.ghost = nil
        #expect(RetryBook.key(of: bare) == "ghost github/?")
    }
}
