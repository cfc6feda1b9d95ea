/// A secret value: prints as `(sensitive)` everywhere; only `withRevealed` hands out the text.
///
/// ```swift
/// let secret = Secret("tkc_…")
/// print(secret)              // (sensitive)
/// secret.withRevealed { deliver($0) }
/// ```
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    /// Wraps a secret value.
    public init(_ value: String) { self.value = value }

    public var description: String { "(sensitive)" }
    public var debugDescription: String { "(sensitive)" }
    public var customMirror: Mirror { Mirror(self, children: []) }

    /// Runs `body` with the secret's text; the only way to read it.
    public func withRevealed<T>(_ body: (String) throws -> T) rethrows -> T { try body(value) }
}
