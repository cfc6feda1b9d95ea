/// What an issuer's driver can do. The planner, the engine and repair read these; none of them asks for a type name.
package struct IssuerCapabilities: OptionSet, Hashable, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Changes a credential's scopes without reissuing it (else a scope change rotates).
    package static let updateInPlace = IssuerCapabilities(rawValue: 1 << 0)
    /// Lists every credential it holds (ghost detection, `--refresh`).
    package static let inventory = IssuerCapabilities(rawValue: 1 << 1)
    /// Finds the credential issued under an idempotency key (repair of an issue a crash interrupted).
    package static let idempotencyLookup = IssuerCapabilities(rawValue: 1 << 2)
    /// Issuing again under a used idempotency key returns the same secret, so repair can finish an interrupted
    /// delivery without reading any store back.
    package static let replaysSecrets = IssuerCapabilities(rawValue: 1 << 3)
    /// Keeps two versions of a token valid at once (rotation with overlap).
    package static let overlap = IssuerCapabilities(rawValue: 1 << 4)
    /// Delivers its secret in more than one form (a token's `secretFormat`).
    package static let secretFormats = IssuerCapabilities(rawValue: 1 << 5)
}

/// What a store's driver can do.
package struct StoreCapabilities: OptionSet, Hashable, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Secrets can be read back (drift checks, `secret get`, `exec`, `state rebuild`, repair by reading back).
    /// A store without it is write-only: tokenctl writes and removes, and trusts its own records.
    package static let readable = StoreCapabilities(rawValue: 1 << 0)
}

/// Settings of one issuer or store type, decoded by the driver registered for the type. Only that driver looks inside.
package protocol DriverSettings: Hashable, Sendable {}

extension DriverSettings {
    /// Whether `other` holds the same settings of the same type.
    func isEqual(to other: any DriverSettings) -> Bool {
        (other as? Self) == self
    }
}

/// An issuer's or store's `type` and its decoded settings.
package struct DriverConfiguration: Hashable, Sendable {
    /// The type as written in manifests, e.g. `postgres`.
    package var type: String
    /// The settings, of the type's own `DriverSettings` type.
    package var settings: any DriverSettings

    /// Creates a configuration.
    package init(type: String, settings: any DriverSettings) {
        self.type = type
        self.settings = settings
    }

    /// The settings as the driver's own type, or nil when they are of another type.
    package func settings<Settings: DriverSettings>(as type: Settings.Type) -> Settings? {
        settings as? Settings
    }

    package static func == (lhs: DriverConfiguration, rhs: DriverConfiguration) -> Bool {
        lhs.type == rhs.type && lhs.settings.isEqual(to: rhs.settings)
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        settings.hash(into: &hasher)
    }
}

/// Settings for a type that has none (a section that may be left out).
package struct NoDriverSettings: DriverSettings {
    /// Creates empty settings.
    package init() {}
}
