import TokenctlDrivers

/// The fields each object of the manifest format accepts: the table the decoder checks unknown fields against, and
/// that tests compare with `Manifests/tokenctl.schema.json`. Issuer and store settings sections belong to their
/// drivers: `table(with:)` adds those of a registry.
package enum ManifestFields {
    /// The supported `apiVersion`.
    package static let apiVersion = "tokenctl/v1"
    /// The document kinds.
    package static let kinds = ["Token", "Issuer", "Store", "Policy", "Notifier"]

    /// Field names per object path, e.g. `Token.spec.rotation`.
    package static let table: [String: [String]] = [
        "document": document,
        "Token.metadata": tokenMetadata,
        "Issuer.metadata": metadata,
        "Store.metadata": metadata,
        "Policy.metadata": metadata,
        "Token.spec": tokenSpec,
        "Token.spec.rotation": rotation,
        "Token.spec.deliverTo[]": delivery,
        "Token.spec.exception": exception,
        "Issuer.spec": issuerSpec,
        "Store.spec": storeSpec,
        "Policy.spec": policySpec,
        "Policy.spec.scopes[]": scopeRule,
        "Policy.spec.maxIssued": issueRateLimit,
        "Notifier.metadata": metadata,
        "Notifier.spec": notifierSpec,
        "Notifier.spec.selector": notifierSelector,
        "Notifier.spec.events": notifierEvents,
        "Notifier.spec.events.expiring": ["leadTimes"],
        "Notifier.spec.events.failing": ["after"],
        "Notifier.spec.events.unused": ["after"],
        "Notifier.spec.events.ghost": [],
        "Notifier.spec.events.policyViolation": [],
        "Notifier.spec.events.rateLimited": [],
    ]

    static let document = ["apiVersion", "kind", "metadata", "spec"]
    static let tokenMetadata = ["name", "namespace", "owner", "labels", "annotations"]
    static let metadata = ["name", "labels", "annotations"]
    static let tokenSpec = ["issuer", "scopes", "lifespan", "rotation", "deliverTo", "exception", "secretFormat"]
    static let rotation = ["every", "overlap", "window"]
    static let delivery = ["store", "key"]
    static let exception = ["reason", "approvedBy", "ticket", "expires"]
    static let issuerSpec = ["type", "ghosts"]
    static let storeSpec = ["type"]
    static let policySpec = ["maxLifespan", "maxRotationEvery", "permanentTokens", "scopes", "maxIssued"]
    static let issueRateLimit = ["count", "per", "by"]
    static let scopeRule = ["owners", "allow"]
    static let notifierSpec = ["url", "format", "signingKey", "selector", "events", "timeout"]
    static let notifierSelector = ["owners", "namespaces"]
    static let notifierEvents = ["expiring", "failing", "ghost", "unused", "policyViolation", "rateLimited"]

    /// The whole table: the format's own objects and the settings sections of the registry's kinds.
    package static func table(with registry: DriverRegistry) -> [String: [String]] {
        var table = self.table
        table["Issuer.spec", default: []].append(contentsOf: registry.issuerKinds.map(\.section))
        table["Store.spec", default: []].append(contentsOf: registry.storeKinds.map(\.section))
        table.merge(registry.fieldTable) { own, _ in own }
        return table
    }
}
