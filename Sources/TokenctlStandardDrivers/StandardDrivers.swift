import TokenctlBuiltinIssuer
import TokenctlDrivers
import TokenctlExec
import TokenctlPostgresIssuer
import TokenctlStores

extension DriverRegistry {
    /// The issuer and store types of this build of tokenctl: adding a type is one line here.
    package static let standard = DriverRegistry(
        issuers: [BuiltinIssuerKind(), PostgresIssuerKind(), ExecIssuerKind()],
        stores: [EncryptedFileStoreKind(), DotenvStoreKind(), ExecStoreKind()]
    )
}
