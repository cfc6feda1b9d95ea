import Crypto
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlState
import TokenctlStores

/// Opens the issuers and stores the manifests name, through the registry's kinds: the one place that turns a
/// manifest set into drivers, for apply, the controller and the commands that only look.
///
/// ```swift
/// let setup = DriverSetup(registry: .standard, stateDirectory: ".tokenctl")
/// let drivers = try setup.open(manifests, state: store)
/// ```
package struct DriverSetup: Sendable {
    /// The issuer and store types known.
    package var registry: DriverRegistry
    /// The state directory (the builtin authority and the generated master key live there).
    package var stateDirectory: String

    /// Creates a setup.
    package init(registry: DriverRegistry, stateDirectory: String) {
        self.registry = registry
        self.stateDirectory = stateDirectory
    }

    /// What a driver may use; `createMasterKey` lets a missing generated master key be made.
    package func context(mode: DriverContext.Mode, createMasterKey: Bool) -> DriverContext {
        let directory = stateDirectory
        return DriverContext(stateDirectory: directory, mode: mode, resolveKey: { reference, existing throws(StoreError) in
            let key = try MasterKey.resolve(reference, stateDirectory: directory, create: createMasterKey, existingStore: existing)
            return key.withUnsafeBytes { Array($0) }
        })
    }

    /// The drivers of an apply. An issuer that cannot be opened is unavailable: its tokens' changes fail with the
    /// reason, the rest go ahead. A store that cannot be opened stops the run: issuing credentials whose secrets could
    /// not be delivered would only leave them to revoke.
    package func open(_ manifests: ManifestSet, state: any StateStore) throws(DriverSetupError) -> Drivers {
        let context = context(mode: .readWrite, createMasterKey: true)
        var issuers: [String: any CredentialIssuer] = [:]
        var unavailable: [String: String] = [:]
        for (name, issuer) in manifests.issuers {
            do {
                issuers[name] = try registry.makeIssuer(issuer, context: context)
            } catch {
                unavailable[name] = error.description
            }
        }
        var drivers = Drivers(issuers: issuers, stores: try stores(manifests, context: context), state: state)
        drivers.unavailableIssuers = unavailable
        return drivers
    }

    /// The issuers for a look at their inventories (`plan --refresh`): nothing is created. An issuer that cannot list
    /// its inventory is left out (`Inventory` says so); one that can but cannot be opened is an error.
    package func issuersForReading(_ manifests: ManifestSet) throws(DriverSetupError) -> [String: any CredentialIssuer] {
        let context = context(mode: .readOnly, createMasterKey: false)
        var issuers: [String: any CredentialIssuer] = [:]
        for (name, issuer) in manifests.issuers where issuer.capabilities.contains(.inventory) {
            do {
                issuers[name] = try registry.makeIssuer(issuer, context: context)
            } catch {
                throw DriverSetupError("cannot refresh \(error.description)")
            }
        }
        return issuers
    }

    /// The stores opened to read only: nothing is created, and a store that cannot be opened is passed to `skip`
    /// (when given) instead of failing.
    package func storesForReading(_ manifests: ManifestSet,
                                 skip: ((String, DriverSetupError) -> Void)? = nil) throws(DriverSetupError) -> [String: any SecretStore] {
        try stores(manifests, context: context(mode: .readOnly, createMasterKey: false), skip: skip)
    }

    private func stores(_ manifests: ManifestSet, context: DriverContext,
                        skip: ((String, DriverSetupError) -> Void)? = nil) throws(DriverSetupError) -> [String: any SecretStore] {
        var stores: [String: any SecretStore] = [:]
        for (name, store) in manifests.stores {
            do {
                stores[name] = try registry.makeStore(store, context: context)
            } catch {
                guard let skip else { throw error }
                skip(name, error)
            }
        }
        return stores
    }
}
