import TokenctlDrivers
import TokenctlModel

/// Settings of a `builtin` issuer.
package struct BuiltinIssuerSettings: DriverSettings {
    /// The prefix used when none is given.
    package static let defaultPrefix = "tkc"
    /// The prefix of issued tokens: `prefix_…`.
    package var prefix: String

    /// Creates settings.
    package init(prefix: String = Self.defaultPrefix) {
        self.prefix = prefix
    }
}

/// The `builtin` issuer type: tokenctl's own authority in the state directory.
package struct BuiltinIssuerKind: IssuerKind {
    package let type = "builtin"
    package let section = "builtin"
    package let capabilities: IssuerCapabilities = [.updateInPlace, .inventory, .idempotencyLookup, .overlap]
    package let fields = ["": ["prefix"]]
    package let schemaName = "BuiltinIssuer"
    package let schemaDefinitions = ["BuiltinIssuer": """
        {"type": "object", "description": "Settings of tokenctl's own token authority.", "additionalProperties": false,
         "properties": {"prefix": {"type": "string", "pattern": "^[a-z][a-z0-9]{1,15}$", "default": "tkc",
                                   "description": "Prefix of issued tokens (prefix_...); 2-16 lowercase letters/digits (default tkc)."}}}
        """]

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        // The section is optional: every setting has a default.
        guard let section else { return BuiltinIssuerSettings() }
        if case .null = section { return BuiltinIssuerSettings() }
        guard let fields = reader.mapping(section, display: "Issuer spec.builtin", fields: self.fields[""] ?? []) else { return nil }
        guard let prefix = fields["prefix"].flatMap({ reader.string($0.value, field: "builtin.prefix") }) else {
            // Absent or empty: the default. Anything else was reported.
            return fields["prefix"]?.value.isNull ?? true ? BuiltinIssuerSettings() : nil
        }
        guard Self.isPrefix(prefix.value) else {
            reader.error("bad-value", "invalid builtin.prefix '\(prefix.value)': use 2 to 16 lowercase letters and digits, starting with a letter",
                         at: prefix.location)
            return nil
        }
        return BuiltinIssuerSettings(prefix: prefix.value)
    }

    package func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        let settings = issuer.driver.settings(as: BuiltinIssuerSettings.self) ?? BuiltinIssuerSettings()
        do {
            let authority = try BuiltinAuthority(directory: context.stateDirectory, mode: context.mode == .readOnly ? .readOnly : .readWrite)
            return BuiltinIssuer(authority: authority, name: issuer.metadata.name, prefix: settings.prefix)
        } catch {
            throw DriverSetupError(error.description)
        }
    }

    /// 2 to 16 lowercase ASCII letters and digits, starting with a letter.
    static func isPrefix(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (2...16).contains(bytes.count), bytes[0] >= 97, bytes[0] <= 122 else { return false }
        return bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }
}

extension BuiltinAuthority {
    /// When each credential of `issuers` was last used, as the authority in `directory` recorded it; empty when there
    /// is no authority there.
    package static func lastUsedTimes(issuers: Set<String>, directory: String) -> [String: Timestamp] {
        guard let authority = try? BuiltinAuthority(directory: directory, mode: .readOnly) else { return [:] }
        var result: [String: Timestamp] = [:]
        for issuer in issuers {
            for (id, time) in (try? authority.lastUsed(issuer: issuer)) ?? [:] { result[id] = time }
        }
        return result
    }

    /// When each credential of the recorded tokens was last used, as the authority in `directory` recorded it (other
    /// issuers report last use through state).
    package static func lastUsedTimes(_ state: RecordedState, directory: String) -> [String: Timestamp] {
        lastUsedTimes(issuers: Set(state.tokens.values.map(\.issuer)), directory: directory)
    }
}
