import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlState

/// `state rebuild`: an empty state filled from what the issuers recorded and what the stores hold, with its audit
/// entry in the same transaction, and the manifest roots recorded.
///
/// ```swift
/// let outcome = try await StateRebuild(store: store, directory: ".tokenctl", paths: ["manifests"], registry: .standard)
///     .run(manifests, now: now)
/// ```
package struct StateRebuild {
    /// What a rebuild did, for the caller to render.
    package enum Outcome: Sendable {
        /// The state records tokens already: nothing was written.
        case stateNotEmpty(tokens: Int)
        /// Rebuilt: a one-line summary, the new serial, how many tokens had nothing to rebuild from, and notes.
        case rebuilt(summary: String, serial: Int64, missing: Int, notes: [String])
    }

    package var store: StateBackend.Store
    package var directory: String
    package var paths: [String]
    package var registry: DriverRegistry

    package init(store: StateBackend.Store, directory: String, paths: [String], registry: DriverRegistry) {
        self.store = store
        self.directory = directory
        self.paths = paths
        self.registry = registry
    }

    /// Rebuilds the records of `desired` (the caller holds the state lock).
    package func run(_ desired: ManifestSet, now: Timestamp) async throws -> Outcome {
        let recorded = try await store.load()
        guard recorded.tokens.isEmpty else { return .stateNotEmpty(tokens: recorded.tokens.count) }
        let auditKey = try await AuditKey.forRun(store, stateDirectory: directory, manifests: desired)
        let drivers = try DriverSetup(registry: registry, stateDirectory: directory).open(desired, state: store)
        let rebuilt = await StateRecovery.rebuild(desired: desired, drivers: drivers, now: now)
        let versions = rebuilt.tokens.reduce(0) { $0 + $1.versions.count }
        let delivered = rebuilt.tokens.reduce(0) { total, token in total + token.versions.reduce(0) { $0 + $1.deliveries.count } }
        let summary = "rebuilt \(rebuilt.tokens.count) of \(counted(desired.tokens.count, "token")) "
            + "(\(versions) live credential version\(versions == 1 ? "" : "s"), \(delivered) deliver\(delivered == 1 ? "y" : "ies") found)"
        // The rebuilt state and its audit entry in one transaction.
        let origin = RequestOrigin.current(manifestPaths: paths)
        let sealed = try await AuditLog(store: store, key: auditKey).seal([origin.entry("state rebuild", at: now, detail: summary)])
        let serial = try await store.write(rebuilt.tokens.map { .upsert($0) }, expectedSerial: recorded.serial, audit: sealed.records,
                                           anchor: sealed.anchor)
        // The rebuilt state is managed from the manifests it was rebuilt from.
        _ = try await ManifestRoots.check(store, paths: paths, acceptNew: true, record: true)
        return .rebuilt(summary: summary, serial: serial, missing: desired.tokens.count - rebuilt.tokens.count, notes: rebuilt.notes)
    }
}
