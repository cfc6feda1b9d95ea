/// A moment in UTC, as whole seconds since 1970-01-01T00:00:00Z.
///
/// ```swift
/// let expiry = try Timestamp(parsing: "2027-03-01")
/// expiry.description  // "2027-03-01T00:00:00Z"
/// ```
package struct Timestamp: Hashable, Sendable, Comparable, TextCodable {
    /// Seconds since the Unix epoch.
    package var secondsSinceEpoch: Int64

    /// Creates a timestamp from seconds since the Unix epoch.
    package init(secondsSinceEpoch: Int64) { self.secondsSinceEpoch = secondsSinceEpoch }


    /// Reads an RFC 3339 time or a date (for `TextCodable`).
    package init?(text: String) { try? self.init(parsing: text) }

    /// Why a timestamp could not be read.
    package enum ParseError: Error, Equatable, Sendable {
        /// Not `YYYY-MM-DD` or RFC 3339 `YYYY-MM-DDTHH:MM[:SS](Z|±HH:MM)`.
        case malformed
        /// The month, day, hour, minute or second is out of range.
        case outOfRange
    }

    /// Reads `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time such as `2026-11-28T04:10:00Z`.
    package init(parsing text: String) throws(ParseError) {
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ count: Int) throws(ParseError) -> Int {
            guard from + count <= bytes.count else { throw .malformed }
            var value = 0
            for byte in bytes[from..<(from + count)] {
                guard byte >= 48, byte <= 57 else { throw .malformed }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        func expect(_ index: Int, _ characters: String) throws(ParseError) {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { throw .malformed }
        }
        let year = try number(0, 4)
        try expect(4, "-")
        let month = try number(5, 2)
        try expect(7, "-")
        let day = try number(8, 2)
        guard (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day) else {
            throw .outOfRange
        }
        var seconds = Int64(Self.daysFromCivil(year: year, month: month, day: day)) * 86_400
        if bytes.count == 10 {
            secondsSinceEpoch = seconds
            return
        }
        try expect(10, "Tt ")
        let hour = try number(11, 2)
        try expect(13, ":")
        let minute = try number(14, 2)
        var index = 16
        var second = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            second = try number(17, 2)
            index = 19
            // Fractions of a second are accepted and dropped.
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            }
        }
        guard hour < 24, minute < 60, second < 61 else { throw .outOfRange }
        seconds += Int64(hour * 3600 + minute * 60 + second)
        guard index < bytes.count else { throw .malformed }
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == bytes.count else { throw .malformed }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = bytes[index] == UInt8(ascii: "+") ? 1 : -1
            let offsetHour = try number(index + 1, 2)
            try expect(index + 3, ":")
            let offsetMinute = try number(index + 4, 2)
            guard index + 6 == bytes.count else { throw .malformed }
            guard offsetHour < 24, offsetMinute < 60 else { throw .outOfRange }
            seconds -= sign * Int64(offsetHour * 3600 + offsetMinute * 60)
        default:
            throw .malformed
        }
        secondsSinceEpoch = seconds
    }

    /// RFC 3339 in UTC, e.g. `2026-11-28T04:10:00Z`.
    package var description: String {
        let days = Int(secondsSinceEpoch >= 0 ? secondsSinceEpoch / 86_400 : (secondsSinceEpoch - 86_399) / 86_400)
        let secondOfDay = Int(secondsSinceEpoch - Int64(days) * 86_400)
        let (year, month, day) = Self.civilFromDays(days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// The day of the week, 0 = Monday … 6 = Sunday.
    package var weekday: Int {
        let days = secondsSinceEpoch >= 0 ? secondsSinceEpoch / 86_400 : (secondsSinceEpoch - 86_399) / 86_400
        // 1970-01-01 was a Thursday (3).
        return Int(((days % 7) + 7 + 3) % 7)
    }

    package static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.secondsSinceEpoch < rhs.secondsSinceEpoch }

    /// The moment `duration` after this one.
    package static func + (lhs: Timestamp, rhs: TokenDuration) -> Timestamp {
        Timestamp(secondsSinceEpoch: lhs.secondsSinceEpoch &+ rhs.seconds)
    }

    static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil: proleptic Gregorian calendar, no Foundation needed.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
