/// The fields each object of the manifest format accepts: the one table the decoder checks
/// unknown fields against, and that tests compare with `Manifests/tokenctl.schema.json`.
public enum ManifestFields {
    /// The supported `apiVersion`.
    public static let apiVersion = "tokenctl/v1"
    /// The document kinds.
    public static let kinds = ["Token", "Issuer", "Store", "Policy"]

    /// Field names per object path, e.g. `Token.spec.rotation`.
    public static let table: [String: [String]] = [
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
        "Issuer.spec.builtin": builtin,
        "Issuer.spec.postgres": postgres,
        "Issuer.spec.postgres.tls": postgresTLS,
        "Issuer.spec.exec": exec,
        "Store.spec": storeSpec,
        "Store.spec.encryptedFile": encryptedFile,
        "Store.spec.dotenv": dotenv,
        "Store.spec.exec": exec,
        "Policy.spec": policySpec,
        "Policy.spec.scopes[]": scopeRule,
    ]

    static let document = ["apiVersion", "kind", "metadata", "spec"]
    static let tokenMetadata = ["name", "namespace", "owner", "labels", "annotations"]
    static let metadata = ["name", "labels", "annotations"]
    static let tokenSpec = ["issuer", "scopes", "lifespan", "rotation", "deliverTo", "exception", "secretFormat"]
    static let rotation = ["every", "overlap", "window"]
    static let delivery = ["store", "key"]
    static let exception = ["reason", "approvedBy", "ticket", "expires"]
    static let issuerSpec = ["type", "builtin", "postgres", "exec", "ghosts"]
    static let builtin = ["prefix"]
    static let postgres = ["url", "roleTemplate", "tls", "reassignOwnedTo"]
    static let postgresTLS = ["mode", "caFile"]
    static let exec = ["command", "timeout"]
    static let storeSpec = ["type", "encryptedFile", "dotenv", "exec"]
    static let encryptedFile = ["path", "key"]
    static let dotenv = ["path"]
    static let policySpec = ["maxLifespan", "maxRotationEvery", "permanentTokens", "scopes"]
    static let scopeRule = ["owners", "allow"]

    /// Issuer types.
    public static let issuerTypes = ["builtin", "postgres", "exec"]
    /// Store types.
    public static let storeTypes = ["encrypted-file", "dotenv", "exec"]
    /// PostgreSQL TLS modes.
    public static let postgresTLSModes = ["disable", "require", "verify-full"]
}
