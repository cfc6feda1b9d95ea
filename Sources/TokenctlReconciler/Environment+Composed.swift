import Logging
import TokenctlDrivers
import TokenctlEngine
import TokenctlManifest
import TokenctlModel

extension Reconciler.Environment {
    /// The environment of a run of this process (a command or a controller pass): the drivers the manifests name, the
    /// master key's audit key, the issuers' inventories, and the fault-injection checkpoints.
    package static func composed(store: StateBackend.Store, manifests: ManifestSet, paths: [String], command: String, directory: String,
                                 stateURL: String?, registry: DriverRegistry, origin: @escaping @Sendable () -> RequestOrigin,
                                 logger: Logger, checkpoint: @escaping @Sendable (String) -> Void,
                                 warn: @escaping @Sendable (String) -> Void) -> Self {
        Self(store: store, manifestPaths: paths, command: command, stateDescription: stateURL == nil ? "'\(directory)'" : "the shared state",
             origin: origin,
             auditKey: { try await AuditKey.forRun(store, stateDirectory: directory, manifests: manifests) },
             openDrivers: { try DriverSetup(registry: registry, stateDirectory: directory).open(manifests, state: store) },
             observe: { manifests, drivers in try await Inventory.observe(manifests, issuers: drivers.issuers, stores: drivers.stores, warn: warn) },
             checkpoint: checkpoint, logger: logger)
    }
}

extension Reconciler {
    /// The secret-like values that manifests allow (`tokenctl.io/allow-secret-like`), for the request's audit entry.
    package static func secretAllowances(_ loaded: ManifestLoadResult) -> String {
        let allowed = loaded.diagnostics.filter { $0.code == SecretAllowance.code }.compactMap(\.location)
        guard !allowed.isEmpty else { return "" }
        return "; secret-like values allowed by \(SecretAllowance.annotation) at " + allowed.map(\.description).joined(separator: ", ")
    }
}
