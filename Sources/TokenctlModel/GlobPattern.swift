/// A shell-style pattern for scopes and owners: `*` matches any run of characters, `?` one.
///
/// ```swift
/// GlobPattern("orders:*").matches("orders:write")  // true
/// ```
package struct GlobPattern: Hashable, Sendable, CustomStringConvertible {
    /// The pattern as written.
    package var pattern: String
    private let bytes: [UInt8]

    /// Creates a pattern.
    package init(_ pattern: String) {
        self.pattern = pattern
        self.bytes = Array(pattern.utf8)
    }

    package var description: String { pattern }

    /// Whether `text` matches the whole pattern.
    package func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches(bytes: $0) }
    }

    private func matches(bytes text: UnsafeBufferPointer<UInt8>) -> Bool {
        // Iterative matcher with single-star backtracking: linear in practice, never exponential.
        var p = 0, t = 0
        var starP = -1, starT = 0
        while t < text.count {
            if p < bytes.count, bytes[p] == UInt8(ascii: "?") || bytes[p] == text[t] {
                p += 1
                t += 1
            } else if p < bytes.count, bytes[p] == UInt8(ascii: "*") {
                starP = p
                starT = t
                p += 1
            } else if starP >= 0 {
                p = starP + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < bytes.count, bytes[p] == UInt8(ascii: "*") { p += 1 }
        return p == bytes.count
    }
}
