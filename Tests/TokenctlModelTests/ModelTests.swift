import Testing
@testable import TokenctlModel

@Suite struct DurationTests {
    @Test(arguments: [
        ("30s", 30), ("15m", 900), ("12h", 43_200), ("90d", 7_776_000), ("2w", 1_209_600), ("1d12h", 129_600), ("0s", 0),
    ] as [(String, Int64)])
    func parses(_ text: String, _ seconds: Int64) throws {
        #expect(try TokenDuration(parsing: text).seconds == seconds)
    }

    @Test(arguments: [
        ("", TokenDuration.ParseError.empty), ("90", .malformed), ("d", .malformed), ("90x", .unknownUnit("x")),
        ("9 d", .malformed), ("-1d", .malformed), ("99999999999999999999d", .overflow), ("1.5h", .malformed),
    ])
    func rejects(_ text: String, _ error: TokenDuration.ParseError) {
        #expect(throws: error) { try TokenDuration(parsing: text) }
    }

    @Test(arguments: [(7_776_000, "90d"), (86_400, "1d"), (1_209_600, "2w"), (864_000, "10d"), (90_061, "1d1h1m1s"), (0, "0s")] as [(Int64, String)])
    func prints(_ seconds: Int64, _ text: String) {
        #expect(TokenDuration(seconds: seconds).description == text)
    }
}

@Suite struct TimestampTests {
    @Test func parsesDatesAndTimes() throws {
        #expect(try Timestamp(parsing: "1970-01-01").secondsSinceEpoch == 0)
        #expect(try Timestamp(parsing: "2027-03-01").description == "2027-03-01T00:00:00Z")
        #expect(try Timestamp(parsing: "2026-11-28T04:10:00Z").description == "2026-11-28T04:10:00Z")
        #expect(try Timestamp(parsing: "2026-11-28T06:10:00+02:00").description == "2026-11-28T04:10:00Z")
        #expect(try Timestamp(parsing: "2024-02-29T23:59:59.5Z").description == "2024-02-29T23:59:59Z")
    }

    @Test(arguments: ["2027-02-30", "2027-13-01", "27-03-01", "2027-03-01T25:00:00Z", "2027-03-01T10:00", "soon", "2027-03-01Z"])
    func rejects(_ text: String) {
        #expect(throws: Timestamp.ParseError.self) { try Timestamp(parsing: text) }
    }

    @Test func weekdays() throws {
        #expect(try Timestamp(parsing: "2026-11-30").weekday == 0)  // Monday
        #expect(try Timestamp(parsing: "2026-11-29").weekday == 6)  // Sunday
        #expect(try Timestamp(parsing: "1970-01-01").weekday == 3)  // Thursday
    }
}

@Suite struct RotationWindowTests {
    @Test func weekdayOfficeHours() throws {
        let window = try RotationWindow(parsing: "Mon-Fri 09:00-17:00 UTC")
        #expect(window.contains(try Timestamp(parsing: "2026-11-30T09:00:00Z")))
        #expect(window.contains(try Timestamp(parsing: "2026-12-04T16:59:59Z")))
        #expect(!window.contains(try Timestamp(parsing: "2026-11-30T17:00:00Z")))
        #expect(!window.contains(try Timestamp(parsing: "2026-11-29T10:00:00Z")))  // Sunday
    }

    @Test func crossesMidnightWithOffset() throws {
        let window = try RotationWindow(parsing: "Sat 22:00-02:00 +02:00")
        // Saturday 23:00 at +02:00 is 21:00 UTC.
        #expect(window.contains(try Timestamp(parsing: "2026-11-28T21:00:00Z")))
        // Sunday 01:00 at +02:00 belongs to Saturday's window.
        #expect(window.contains(try Timestamp(parsing: "2026-11-28T23:00:00Z")))
        #expect(!window.contains(try Timestamp(parsing: "2026-11-29T01:00:00Z")))
    }

    @Test(arguments: ["Mon-Fri 09:00-17:00", "Mon-Frx 09:00-17:00 UTC", "Mon 9:00-17:00 UTC", "Mon 09:00-09:00 UTC",
                      "Mon 09:00-17:00 Europe/Berlin", "daily 25:00-26:00 UTC"])
    func rejects(_ text: String) {
        #expect(throws: RotationWindow.ParseError.self) { try RotationWindow(parsing: text) }
    }
}

@Suite struct GlobAndReferenceTests {
    @Test(arguments: [
        ("orders:*", "orders:read", true), ("orders:*", "orders", false), ("*", "", true), ("team-?", "team-a", true),
        ("team-?", "team-ab", false), ("*:read", "reports:read", true), ("a*b*c", "axxbyyc", true), ("a*b*c", "axxbyy", false),
        ("role:analytics_*", "role:analytics_read", true),
    ])
    func globs(_ pattern: String, _ text: String, _ matches: Bool) {
        #expect(GlobPattern(pattern).matches(text) == matches)
    }

    @Test func globIsLinearOnPathologicalPatterns() {
        let pattern = GlobPattern(String(repeating: "a*", count: 50) + "b")
        #expect(!pattern.matches(String(repeating: "a", count: 5_000)))
    }

    @Test func references() throws {
        #expect(try SecretReference(parsing: "env:TOKENCTL_MASTER_KEY") == .environment("TOKENCTL_MASTER_KEY"))
        #expect(try SecretReference(parsing: "file:/run/secrets/key") == .file("/run/secrets/key"))
        #expect(throws: SecretReference.ParseError.missingScheme) { try SecretReference(parsing: "hunter2") }
        #expect(throws: SecretReference.ParseError.badVariableName) { try SecretReference(parsing: "env:1BAD") }
        #expect(throws: SecretReference.ParseError.empty) { try SecretReference(parsing: "file:") }
    }

    @Test func locationsOrderByFileThenPosition() {
        let a = SourceLocation(file: "a.yaml", line: 9, column: 1)
        let b = SourceLocation(file: "b.yaml", line: 1, column: 1)
        let a2 = SourceLocation(file: "a.yaml", line: 9, column: 4)
        #expect(a < b && a < a2 && !(b < a))
        #expect(a2.description == "a.yaml:9:4")
    }
}
