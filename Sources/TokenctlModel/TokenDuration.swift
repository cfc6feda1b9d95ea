/// A length of time written as `30s`, `15m`, `12h`, `90d`, `2w` or a sum such as `1d12h`.
///
/// ```swift
/// let lifespan = try TokenDuration(parsing: "90d")
/// lifespan.seconds      // 7_776_000
/// lifespan.description  // "90d"
/// ```
package struct TokenDuration: Hashable, Sendable, Comparable, TextCodable {
    /// The length in whole seconds.
    package var seconds: Int64

    /// Creates a duration of the given number of seconds.
    package init(seconds: Int64) { self.seconds = seconds }

    /// Reads a duration (for `TextCodable`).
    package init?(text: String) { try? self.init(parsing: text) }


    /// The units a duration may be written in, with their length in seconds.
    package static let units: [(symbol: Character, seconds: Int64)] = [
        ("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1),
    ]

    private static func unitSeconds(_ byte: UInt8) -> Int64? {
        switch byte {
        case UInt8(ascii: "w"): 604_800
        case UInt8(ascii: "d"): 86_400
        case UInt8(ascii: "h"): 3_600
        case UInt8(ascii: "m"): 60
        case UInt8(ascii: "s"): 1
        default: nil
        }
    }

    /// Why a duration could not be read.
    package enum ParseError: Error, Equatable, Sendable {
        /// The text is empty.
        case empty
        /// The text is not a sequence of `<number><unit>` groups.
        case malformed
        /// A unit other than s, m, h, d or w.
        case unknownUnit(Character)
        /// The duration is too large to represent.
        case overflow
    }

    /// Reads a duration such as `90d` or `1h30m`; the groups are summed.
    package init(parsing text: String) throws(ParseError) {
        // Specialized here: other modules calling the generic form would run it unspecialized, a witness call per byte.
        try self.init(parsingText: text)
    }

    /// Reads a duration from a substring or other text, as `init(parsing:)`.
    package init(parsing text: some StringProtocol) throws(ParseError) {
        try self.init(parsingText: text)
    }

    private init(parsingText text: some StringProtocol) throws(ParseError) {
        var total: Int64 = 0
        var number: Int64 = 0
        var sawDigit = false
        var sawGroup = false
        for byte in text.utf8 {
            if byte >= 48 && byte <= 57 {
                let (times, overflowA) = number.multipliedReportingOverflow(by: 10)
                let (plus, overflowB) = times.addingReportingOverflow(Int64(byte - 48))
                if overflowA || overflowB { throw .overflow }
                number = plus
                sawDigit = true
                continue
            }
            guard sawDigit else { throw .malformed }
            guard let unitSeconds = Self.unitSeconds(byte) else {
                if byte.isASCIILetter { throw .unknownUnit(Character(Unicode.Scalar(byte))) }
                throw .malformed
            }
            let (product, overflowA) = number.multipliedReportingOverflow(by: unitSeconds)
            let (sum, overflowB) = total.addingReportingOverflow(product)
            if overflowA || overflowB { throw .overflow }
            total = sum
            number = 0
            sawDigit = false
            sawGroup = true
        }
        if text.isEmpty { throw .empty }
        if sawDigit || !sawGroup { throw .malformed }
        seconds = total
    }

    /// The shortest exact rendering, e.g. `90d`, `36h`, `1d1s`.
    package var description: String {
        if seconds == 0 { return "0s" }
        var rest = seconds
        var text = ""
        for unit in Self.units where rest >= unit.seconds {
            // Weeks only when they divide evenly, so 14d prints as 2w but 10d stays 10d.
            if unit.symbol == "w" && rest % unit.seconds != 0 { continue }
            text += "\(rest / unit.seconds)\(unit.symbol)"
            rest %= unit.seconds
        }
        return text
    }

    package static func < (lhs: TokenDuration, rhs: TokenDuration) -> Bool { lhs.seconds < rhs.seconds }
    package static func + (lhs: TokenDuration, rhs: TokenDuration) -> TokenDuration {
        TokenDuration(seconds: lhs.seconds &+ rhs.seconds)
    }
}

/// How long a credential lives: a finite duration or, with a reviewed exception, forever.
package enum Lifespan: Hashable, Sendable, TextCodable {
    /// The credential expires this long after it is issued.
    case finite(TokenDuration)
    /// The credential never expires (needs an exception).
    case never

    package var description: String {
        switch self {
        case .finite(let duration): duration.description
        case .never: "never"
        }
    }

    /// Reads `never` or a duration.
    package init(parsing text: String) throws(TokenDuration.ParseError) {
        self = text == "never" ? .never : .finite(try TokenDuration(parsing: text))
    }

    /// Reads `never` or a duration (for `TextCodable`).
    package init?(text: String) { try? self.init(parsing: text) }


    /// The finite duration, or `nil` for `never`.
    package var duration: TokenDuration? {
        if case .finite(let duration) = self { return duration }
        return nil
    }
}
