/// A secret value: prints as `(sensitive)` everywhere; only `withRevealed` hands out the text.
///
/// ```swift
/// let secret = Secret("tkc_…")
/// print(secret)              // (sensitive)
/// secret.withRevealed { deliver($0) }
/// ```
package struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    /// Wraps a secret value.
    package init(_ value: String) { self.value = value }

    package var description: String { "(sensitive)" }
    package var debugDescription: String { "(sensitive)" }
    package var customMirror: Mirror { Mirror(self, children: []) }

    /// Runs `body` with the secret's text; the only way to read it.
    package func withRevealed<T>(_ body: (String) throws -> T) rethrows -> T { try body(value) }
}
