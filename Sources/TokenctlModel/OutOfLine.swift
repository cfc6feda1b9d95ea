/// Keeps a rarely set optional value out of line, so that it costs one pointer in every instance of the
/// type holding it, and nothing more while it is nil.
///
/// ```swift
/// struct Token { @OutOfLine var exception: Exception? }  // 8 bytes instead of the exception's size
/// ```
@propertyWrapper
package struct OutOfLine<Wrapped: Hashable & Sendable>: Hashable, Sendable {
    private final class Box: Sendable {
        let value: Wrapped
        init(_ value: Wrapped) { self.value = value }
    }

    private var box: Box?

    /// Stores `wrappedValue` out of line; nil takes no storage.
    package init(wrappedValue: Wrapped?) {
        box = wrappedValue.map(Box.init)
    }

    /// The value; setting it stores a new box, so copies never share changes.
    package var wrappedValue: Wrapped? {
        get { box?.value }
        set { box = newValue.map(Box.init) }
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.box === rhs.box || lhs.box?.value == rhs.box?.value
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(box?.value)
    }
}
