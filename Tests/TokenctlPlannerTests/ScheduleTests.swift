import Testing
import TokenctlModel
import TokenctlPlanner

/// 1,000 token ids in one namespace, as a big manifest set would have them.
private let thousandIDs = (0..<1_000).map { TokenID(namespace: "payments", name: "service-\($0)-ci") }
private let issuedAt = timestamp("2026-10-01T00:00:00Z")

@Suite struct ScheduleTests {
    @Test func spreadHashIsStable() {
        // FNV-1a over namespace, "/", name; pinned so that a change of the hash (which would move every schedule) breaks here.
        // Values checked against an independent FNV-1a of "payments/orders-api-ci" and of "/".
        #expect(Schedule.spreadHash(TokenID(namespace: "payments", name: "orders-api-ci")) == 0x20de_7e89_9672_d25a)
        #expect(Schedule.spreadHash(TokenID(namespace: "", name: "")) == 0xaf63_a24c_8601_89fe)
        #expect(Schedule.spreadHash(tid("a/bc")) != Schedule.spreadHash(tid("ab/c")))
    }

    @Test func sameIntervalIsSpreadOverOneTwentieth() throws {
        let every = duration("30d")
        let settings = Schedule.Settings(every: every, overlap: duration("1d"), window: nil)
        let dues = try thousandIDs.map { try #require(Schedule.rotationDue(id: $0, issuedAt: issuedAt, settings: settings)) }
        #expect(Set(dues).count >= 900)
        let latest = issuedAt + every
        let earliest = Timestamp(secondsSinceEpoch: latest.secondsSinceEpoch - every.seconds / 20)
        #expect(dues.allSatisfy { $0 >= earliest && $0 <= latest })
        // Spread across the range, not bunched at one end.
        let middle = Timestamp(secondsSinceEpoch: latest.secondsSinceEpoch - every.seconds / 40)
        #expect(dues.filter { $0 < middle }.count > 300)
        #expect(dues.filter { $0 >= middle }.count > 300)
    }

    @Test(arguments: ["Mon-Fri 09:00-17:00 UTC", "Sat,Sun 09:00-17:00 UTC", "daily 22:00-02:00 UTC", "Tue 23:30-00:30 +02:00",
                      "Mon,Wed-Fri 06:00-07:00 -05:30", "Sun 22:00-24:00 UTC"])
    func withAWindowEveryDueMomentIsInsideAnOpening(_ text: String) throws {
        let window = window(text)
        let every = duration("30d")
        let settings = Schedule.Settings(every: every, overlap: duration("1d"), window: window)
        let dues = try thousandIDs.map { try #require(Schedule.rotationDue(id: $0, issuedAt: issuedAt, settings: settings)) }
        let outside = dues.filter { !window.contains($0) }
        #expect(outside.isEmpty, "outside \(text): \(outside.prefix(5))")
        #expect(Set(dues).count >= 100)
        // Never before the un-windowed due moment: a window only delays a rotation.
        let earliest = Timestamp(secondsSinceEpoch: (issuedAt + every).secondsSinceEpoch - every.seconds / 20)
        #expect(dues.allSatisfy { $0 >= earliest })
        // And never later than one week and one opening after it.
        #expect(dues.allSatisfy { $0 < issuedAt + every + duration("8d") })
    }

    @Test func dueOnAWeekendWaitsForMondaysFirstHalf() throws {
        // Issued on a Sunday evening, every 28d: every base due moment (spread ≤ 1.4d earlier) falls on the weekend,
        // so a Mon-Fri window starts each rotation in the first half of Monday's opening.
        let issued = timestamp("2026-10-04T20:00:00Z")
        #expect(issued.weekday == 6)
        let settings = Schedule.Settings(every: duration("28d"), overlap: duration("1d"), window: window("Mon-Fri 09:00-17:00 UTC"))
        let dues = try thousandIDs.map { try #require(Schedule.rotationDue(id: $0, issuedAt: issued, settings: settings)) }
        #expect(dues.allSatisfy { $0 >= timestamp("2026-11-02T09:00:00Z") && $0 < timestamp("2026-11-02T13:00:00Z") })
        #expect(Set(dues).count >= 900)
    }

    @Test func noIntervalMeansNoRotation() {
        let settings = Schedule.Settings(every: nil, overlap: duration("1d"), window: nil)
        #expect(Schedule.rotationDue(id: tid("payments/x"), issuedAt: issuedAt, settings: settings) == nil)
        let zero = Schedule.Settings(every: TokenDuration(seconds: 0), overlap: duration("1d"), window: nil)
        #expect(Schedule.rotationDue(id: tid("payments/x"), issuedAt: issuedAt, settings: zero) == nil)
    }

    @Test func tinyIntervalsAreNotSpread() {
        // every/20 rounds to 0 below 20s: no spread, no division by zero.
        let settings = Schedule.Settings(every: duration("10s"), overlap: TokenDuration(seconds: 0), window: nil)
        #expect(Schedule.rotationDue(id: tid("payments/x"), issuedAt: issuedAt, settings: settings) == issuedAt + duration("10s"))
    }

    @Test func latestSafeRotationIsExpiryMinusOverlap() {
        let settings = Schedule.Settings(every: duration("30d"), overlap: duration("36h"), window: nil)
        #expect(Schedule.latestSafeRotation(expiresAt: timestamp("2026-12-10T00:00:00Z"), settings: settings)
            == timestamp("2026-12-08T12:00:00Z"))
        #expect(Schedule.latestSafeRotation(expiresAt: nil, settings: settings) == nil)
    }

    @Test func settingsFromTokensAndState() {
        let desired = Schedule.Settings(token("payments/x", lifespan: "90d", every: nil, overlap: "2h", window: "daily 01:00-02:00 UTC"))
        #expect(desired.every == duration("60d"))
        #expect(desired.overlap == duration("2h"))
        #expect(desired.window == window("daily 01:00-02:00 UTC"))

        let fromState = Schedule.Settings(recorded("payments/x", every: "30d", overlap: "1h", window: "not a window"))
        #expect(fromState.every == duration("30d"))
        #expect(fromState.window == nil)
    }
}
