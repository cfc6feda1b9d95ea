import TokenctlModel

/// The issuer and store types tokenctl knows, by `type:`. The only place that maps a type name to code.
///
/// ```swift
/// let registry = DriverRegistry(issuers: [BuiltinIssuerKind()], stores: [EncryptedFileStoreKind()])
/// let issuer = try registry.makeIssuer(manifests.issuers["local"]!, context: context)
/// ```
package struct DriverRegistry: Sendable {
    /// Issuer kinds by type, in registration order.
    package let issuerKinds: [any IssuerKind]
    /// Store kinds by type, in registration order.
    package let storeKinds: [any StoreKind]
    private let issuersByType: [String: any IssuerKind]
    private let storesByType: [String: any StoreKind]

    /// A registry of these kinds; a later kind with the type of an earlier one replaces it.
    package init(issuers: [any IssuerKind], stores: [any StoreKind]) {
        var issuersByType: [String: any IssuerKind] = [:]
        var issuerOrder: [String] = []
        for kind in issuers {
            if issuersByType[kind.type] == nil { issuerOrder.append(kind.type) }
            issuersByType[kind.type] = kind
        }
        var storesByType: [String: any StoreKind] = [:]
        var storeOrder: [String] = []
        for kind in stores {
            if storesByType[kind.type] == nil { storeOrder.append(kind.type) }
            storesByType[kind.type] = kind
        }
        self.issuersByType = issuersByType
        self.storesByType = storesByType
        self.issuerKinds = issuerOrder.compactMap { issuersByType[$0] }
        self.storeKinds = storeOrder.compactMap { storesByType[$0] }
    }

    /// This registry with more kinds (tests register their own drivers this way).
    package func adding(issuers: [any IssuerKind] = [], stores: [any StoreKind] = []) -> DriverRegistry {
        DriverRegistry(issuers: issuerKinds + issuers, stores: storeKinds + stores)
    }

    /// The issuer types, as `type:` accepts them.
    package var issuerTypes: [String] { issuerKinds.map(\.type) }
    /// The store types.
    package var storeTypes: [String] { storeKinds.map(\.type) }

    /// The kind registered for an issuer type.
    package func issuerKind(_ type: String) -> (any IssuerKind)? { issuersByType[type] }
    /// The kind registered for a store type.
    package func storeKind(_ type: String) -> (any StoreKind)? { storesByType[type] }

    /// Opens an issuer's driver through its kind.
    package func makeIssuer(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        guard let kind = issuersByType[issuer.driver.type] else {
            throw DriverSetupError("issuer '\(issuer.metadata.name)' has type '\(issuer.driver.type)', which this build of tokenctl does not know")
        }
        do {
            return try kind.make(issuer, context: context)
        } catch {
            throw DriverSetupError("issuer '\(issuer.metadata.name)': \(error.description)")
        }
    }

    /// Opens a store's driver through its kind.
    package func makeStore(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        guard let kind = storesByType[store.driver.type] else {
            throw DriverSetupError("store '\(store.metadata.name)' has type '\(store.driver.type)', which this build of tokenctl does not know")
        }
        do {
            return try kind.make(store, context: context)
        } catch {
            throw DriverSetupError("store '\(store.metadata.name)': \(error.description)")
        }
    }

    /// The entry a delivery key occupies in a store (dotenv maps keys to variable names).
    package func entry(forKey key: String, in store: Store) -> String {
        storesByType[store.driver.type]?.entry(forKey: key, settings: store.driver.settings) ?? key
    }

    /// Checks each issuer kind's rules over the tokens of its issuers.
    package func validate(_ set: ManifestSet, into diagnostics: inout [Diagnostic]) {
        var issuersByKind: [String: [String: Issuer]] = [:]
        for (name, issuer) in set.issuers { issuersByKind[issuer.driver.type, default: [:]][name] = issuer }
        for kind in issuerKinds {
            guard let issuers = issuersByKind[kind.type] else { continue }
            kind.validate(tokens: set.tokens, issuers: issuers, into: &diagnostics)
        }
    }

    /// The fields of every kind's settings, by object path (`Issuer.spec.postgres.tls`), for unknown-field hints and
    /// the schema test.
    package var fieldTable: [String: [String]] {
        var table: [String: [String]] = [:]
        for kind in issuerKinds {
            for (path, fields) in kind.fields { table["Issuer.spec." + kind.section + (path.isEmpty ? "" : "." + path)] = fields }
        }
        for kind in storeKinds {
            for (path, fields) in kind.fields { table["Store.spec." + kind.section + (path.isEmpty ? "" : "." + path)] = fields }
        }
        return table
    }
}
