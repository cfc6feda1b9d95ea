import Foundation
import TokenctlModel

/// One issuer type: how its settings are decoded and checked, its part of the JSON Schema, what it can do, and how
/// its driver is made. Registering a kind in a `DriverRegistry` is all it takes to add an issuer type.
///
/// ```swift
/// let registry = DriverRegistry(issuers: [BuiltinIssuerKind()], stores: [DotenvStoreKind()])
/// let loader = ManifestLoader(registry: registry)
/// ```
package protocol IssuerKind: Sendable {
    /// The `type:` it is selected by, e.g. `postgres`.
    var type: String { get }
    /// The key of its settings section in `Issuer.spec`, e.g. `postgres`.
    var section: String { get }
    /// What its drivers can do.
    var capabilities: IssuerCapabilities { get }
    /// The fields its settings accept, by path below the section (`""` for the section itself, `tls` for a nested mapping).
    var fields: [String: [String]] { get }
    /// Its settings' JSON Schema: `$defs` entries of `Manifests/tokenctl.schema.json` by name, as JSON text.
    var schemaDefinitions: [String: String] { get }
    /// The name of the `$defs` entry its settings section refers to.
    var schemaName: String { get }

    /// Decodes the settings section (nil when the spec has none); problems go to `reader`, and nil means invalid.
    func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)?
    /// Checks the tokens of issuers of this kind: `tokens` is the whole set, `issuers` only those of this kind.
    func validate(tokens: [Token], issuers: [String: Issuer], into diagnostics: inout [Diagnostic])
    /// Opens the driver for one issuer of the manifests.
    func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer
    /// What one issuer's driver can do, given its settings (the kind's `capabilities` unless the settings tell more).
    func capabilities(of settings: any DriverSettings) -> IssuerCapabilities
}

extension IssuerKind {
    package var fields: [String: [String]] { [:] }
    package func capabilities(of settings: any DriverSettings) -> IssuerCapabilities { capabilities }

    /// Checks that no token asks for a delivery format: only kinds with `secretFormats` accept one.
    package func validate(tokens: [Token], issuers: [String: Issuer], into diagnostics: inout [Diagnostic]) {
        guard !capabilities.contains(.secretFormats) else { return }
        for token in tokens where token.secretFormat != nil && issuers[token.issuer] != nil {
            diagnostics.append(Diagnostic(.error, "bad-value", "secretFormat does not apply to issuer '\(token.issuer)' (type \(type)): "
                                          + "it delivers its own token format; remove secretFormat", at: token.locations.issuer))
        }
    }
}

/// One store type, as `IssuerKind` is for issuers.
package protocol StoreKind: Sendable {
    /// The `type:` it is selected by, e.g. `encrypted-file`.
    var type: String { get }
    /// The key of its settings section in `Store.spec`, e.g. `encryptedFile`.
    var section: String { get }
    /// What its drivers can do.
    var capabilities: StoreCapabilities { get }
    /// The fields its settings accept, by path below the section.
    var fields: [String: [String]] { get }
    /// Its settings' JSON Schema: `$defs` entries by name, as JSON text.
    var schemaDefinitions: [String: String] { get }
    /// The name of the `$defs` entry its settings section refers to.
    var schemaName: String { get }

    /// Decodes the settings section (nil when the spec has none); problems go to `reader`, and nil means invalid.
    func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)?
    /// The entry a delivery key occupies in a store of this kind; different keys that share one entry collide.
    func entry(forKey key: String, settings: any DriverSettings) -> String
    /// Opens the driver for one store of the manifests.
    func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore
    /// What one store's driver can do, given its settings (the kind's `capabilities` unless the settings tell more).
    func capabilities(of settings: any DriverSettings) -> StoreCapabilities
}

extension StoreKind {
    package var fields: [String: [String]] { [:] }
    package func capabilities(of settings: any DriverSettings) -> StoreCapabilities { capabilities }
    package func entry(forKey key: String, settings: any DriverSettings) -> String { key }
}

/// Settings of a store whose content is encrypted under a key reference (the master key, typically): `rekey`
/// re-encrypts such files, and the master key is never generated anew while one exists.
package protocol KeyedFileSettings: DriverSettings {
    /// The file, as written in the manifest (relative to it).
    var path: String { get }
    /// The key it is encrypted with.
    var key: SecretReference { get }
}

/// What opening a driver may use: the state directory, whether it may create anything, and the master key.
package struct DriverContext: Sendable {
    /// Whether the command changes things (apply) or only looks (plan --refresh, status).
    package enum Mode: Sendable {
        /// Drivers may create what they need (a database, a key file).
        case readWrite
        /// Drivers create nothing.
        case readOnly
    }

    /// The state directory (`.tokenctl`).
    package var stateDirectory: String
    /// Read-write or read-only.
    package var mode: Mode
    /// The process environment (for `env:` references).
    package var environment: [String: String]
    /// The key a reference names, as raw bytes; `existingFile` is a file already written with it (so a missing
    /// generated key is an error rather than made anew).
    package var resolveKey: @Sendable (_ reference: SecretReference, _ existingFile: String?) throws(StoreError) -> [UInt8]

    /// Creates a context.
    package init(stateDirectory: String, mode: Mode, environment: [String: String] = ProcessInfo.processInfo.environment,
                resolveKey: @escaping @Sendable (SecretReference, String?) throws(StoreError) -> [UInt8]) {
        self.stateDirectory = stateDirectory
        self.mode = mode
        self.environment = environment
        self.resolveKey = resolveKey
    }

    /// The value an `env:` or `file:` reference names (trimmed), or an error saying what is missing; `what` names it.
    package func value(of reference: SecretReference, what: String) throws(DriverSetupError) -> String {
        try Self.value(of: reference, what: what, environment: environment)
    }

    /// The value an `env:` or `file:` reference names in `environment` or the file system (trimmed).
    package static func value(of reference: SecretReference, what: String,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws(DriverSetupError) -> String {
        switch reference {
        case .environment(let variable):
            guard let value = environment[variable], !value.isEmpty else {
                throw DriverSetupError("the environment variable \(variable) (\(what)) is not set")
            }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DriverSetupError("cannot read \(what) from \(path)")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

/// Why a driver could not be opened; the message says what to check and never holds a secret.
package struct DriverSetupError: Error, CustomStringConvertible, SafeToPrint {
    package var description: String

    /// Creates an error with a full sentence.
    package init(_ description: String) {
        self.description = description
    }
}

extension Store {
    /// A path as written in this Store's manifest: relative to the file that defines it.
    package func resolve(_ path: String) -> String {
        let base = (metadata.location.file as NSString).deletingLastPathComponent
        return path.hasPrefix("/") ? path : ((base.isEmpty ? "." : base) as NSString).appendingPathComponent(path)
    }
}
