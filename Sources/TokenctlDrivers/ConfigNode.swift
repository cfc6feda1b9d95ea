import TokenctlModel

/// A driver's settings section as the manifest decoder read it, with the place of every value.
///
/// The decoder has already refused duplicate keys and literal secrets (a refused value is `withheld`); the driver
/// decodes the rest into its own settings with a `SettingsReader`.
package indirect enum ConfigNode: Sendable {
    /// A non-empty scalar.
    case scalar(String, SourceLocation)
    /// An empty value (`~`, `null` or nothing).
    case null(SourceLocation)
    /// A mapping, in document order.
    case mapping([ConfigEntry], SourceLocation)
    /// A list.
    case sequence([ConfigNode], SourceLocation)
    /// A value the decoder refused and reported already (it looked like a secret); never echoed.
    case withheld(SourceLocation)

    /// Where the value starts.
    package var location: SourceLocation {
        switch self {
        case .scalar(_, let location), .null(let location), .mapping(_, let location), .sequence(_, let location), .withheld(let location):
            location
        }
    }

    /// Whether it is an empty value.
    package var isNull: Bool {
        if case .null = self { true } else { false }
    }

    /// How messages name what was found.
    package var kindDescription: String {
        switch self {
        case .scalar, .withheld: "a scalar"
        case .null: "an empty value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

/// One key of a mapping and its value.
package struct ConfigEntry: Sendable {
    /// The key.
    package var key: String
    /// Where the key is.
    package var keyLocation: SourceLocation
    /// Its value.
    package var value: ConfigNode

    /// Creates an entry.
    package init(key: String, keyLocation: SourceLocation, value: ConfigNode) {
        self.key = key
        self.keyLocation = keyLocation
        self.value = value
    }
}
