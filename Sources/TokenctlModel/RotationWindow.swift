/// When rotations may start, e.g. `Mon-Fri 09:00-17:00 UTC`.
///
/// ```swift
/// let window = try RotationWindow(parsing: "Mon-Fri 09:00-17:00 UTC")
/// window.contains(try Timestamp(parsing: "2026-11-30T10:00:00Z"))  // true: a Monday
/// ```
package struct RotationWindow: Hashable, Sendable, CustomStringConvertible {
    /// The days on which the window opens, 0 = Monday … 6 = Sunday (in the window's offset).
    package var days: Set<Int>
    /// Minute of the day the window opens.
    package var startMinute: Int
    /// Minute of the day the window closes; smaller than `startMinute` for windows that cross midnight.
    package var endMinute: Int
    /// The window's offset from UTC in minutes.
    package var utcOffsetMinutes: Int
    /// The text as written.
    package var text: String

    /// Day names in order, Monday first.
    package static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    /// Why a window could not be read.
    package enum ParseError: Error, Equatable, Sendable {
        /// The text does not have the form `DAYS HH:MM-HH:MM ZONE`.
        case malformed
        /// A day name other than Mon, Tue, Wed, Thu, Fri, Sat or Sun.
        case unknownDay(String)
        /// A time that is not `HH:MM` within a day.
        case badTime(String)
        /// A zone other than `UTC` or a fixed offset such as `+02:00`.
        case unsupportedZone(String)
        /// Start and end are the same.
        case emptyRange
    }

    /// Reads `DAYS HH:MM-HH:MM ZONE`; DAYS is `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri` or `daily`;
    /// ZONE is `UTC` or a fixed offset such as `+02:00`.
    package init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3 else { throw .malformed }
        var days = Set<Int>()
        if parts[0].lowercased() == "daily" {
            days = Set(0..<7)
        } else {
            for item in parts[0].split(separator: ",") {
                let range = item.split(separator: "-", omittingEmptySubsequences: false)
                guard range.count == 1 || range.count == 2 else { throw .malformed }
                guard let first = Self.dayNames.firstIndex(where: { $0.lowercased() == range[0].lowercased() }) else {
                    throw .unknownDay(String(range[0]))
                }
                var last = first
                if range.count == 2 {
                    guard let end = Self.dayNames.firstIndex(where: { $0.lowercased() == range[1].lowercased() }) else {
                        throw .unknownDay(String(range[1]))
                    }
                    last = end
                }
                var day = first
                while true {
                    days.insert(day)
                    if day == last { break }
                    day = (day + 1) % 7
                }
            }
        }
        let times = parts[1].split(separator: "-", omittingEmptySubsequences: false)
        guard times.count == 2 else { throw .malformed }
        func minute(_ text: Substring) throws(ParseError) -> Int {
            let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count == 2, pieces[0].count == 2, pieces[1].count == 2,
                  let hour = Int(pieces[0]), let minute = Int(pieces[1]),
                  (0...24).contains(hour), (0..<60).contains(minute), hour * 60 + minute <= 1440
            else { throw .badTime(String(text)) }
            return hour * 60 + minute
        }
        let start = try minute(times[0])
        let end = try minute(times[1])
        guard start != end, start != 1440 else { throw .emptyRange }
        let zone = String(parts[2])
        var offset = 0
        if zone != "UTC" && zone != "Z" {
            let bytes = Array(zone.utf8)
            guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"),
                  bytes[3] == UInt8(ascii: ":"),
                  let hours = Int(zone.dropFirst().prefix(2)), let minutes = Int(zone.suffix(2)),
                  hours <= 14, minutes < 60
            else { throw .unsupportedZone(zone) }
            offset = (hours * 60 + minutes) * (bytes[0] == UInt8(ascii: "+") ? 1 : -1)
        }
        self.days = days
        self.startMinute = start
        self.endMinute = end == 1440 ? 0 : end
        self.utcOffsetMinutes = offset
        self.text = text
    }

    package var description: String { text }

    /// Whether a rotation may start at `moment`.
    package func contains(_ moment: Timestamp) -> Bool {
        let local = Timestamp(secondsSinceEpoch: moment.secondsSinceEpoch + Int64(utcOffsetMinutes) * 60)
        let secondOfDay = ((local.secondsSinceEpoch % 86_400) + 86_400) % 86_400
        let minuteOfDay = Int(secondOfDay / 60)
        if startMinute < endMinute {
            return days.contains(local.weekday) && minuteOfDay >= startMinute && minuteOfDay < endMinute
        }
        // Crosses midnight: the part after midnight belongs to the previous day's window.
        if minuteOfDay >= startMinute { return days.contains(local.weekday) }
        if minuteOfDay < endMinute { return days.contains((local.weekday + 6) % 7) }
        return false
    }

    /// How long each opening lasts, in seconds.
    package var lengthSeconds: Int64 {
        Int64(startMinute < endMinute ? endMinute - startMinute : endMinute + 1440 - startMinute) * 60
    }

    /// The first opening that has not ended by `moment`: the one containing it, or the next one.
    package func occurrence(notEndedBy moment: Timestamp) -> (start: Timestamp, end: Timestamp)? {
        let offset = Int64(utcOffsetMinutes) * 60
        let local = moment.secondsSinceEpoch + offset
        let localDay = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        // Start a day early: an opening that crosses midnight may still be running.
        for dayOffset in -1...8 {
            let day = localDay + Int64(dayOffset)
            let weekday = Int(((day % 7) + 7 + 3) % 7)
            guard days.contains(weekday) else { continue }
            let start = day * 86_400 + Int64(startMinute) * 60 - offset
            let end = start + lengthSeconds
            if end > moment.secondsSinceEpoch {
                return (Timestamp(secondsSinceEpoch: start), Timestamp(secondsSinceEpoch: end))
            }
        }
        return nil
    }
}
