import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner

/// An issuer or store that could not be observed.
package struct InventoryError: Error, CustomStringConvertible {
    package var description: String
}

/// `--refresh`: what the issuers hold (inventories, unknown scopes) and what the readable stores hold.
package enum Inventory {
    /// Asks the issuers; `warn` hears about issuers that cannot list their inventory.
    package static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer], stores: [String: any SecretStore],
                        warn: (String) -> Void) async throws(InventoryError) -> Observation {
        var observation = Observation()
        observation.storeContents = try await observeStores(manifests, stores: stores)
        for (name, issuer) in manifests.issuers.sorted(by: { $0.key < $1.key }) {
            guard issuer.capabilities.contains(.inventory), let driver = issuers[name] else {
                warn("issuer '\(name)' (type \(issuer.driver.type)) cannot list its inventory; its credentials are planned from state only")
                continue
            }
            do {
                observation.inventories[name] = try await driver.list()
            } catch {
                throw InventoryError(description: "cannot refresh issuer '\(name)': \(SafeError.describe(error))")
            }
            // Scopes that name nothing at the issuer (a missing group role) fail the refresh, naming the tokens.
            if let checking = driver as? any ScopeChecking {
                let tokens = manifests.tokens.filter { $0.issuer == name }
                let unknown: [String: String]
                do {
                    unknown = try await checking.unknownScopes(Set(tokens.flatMap(\.scopes)))
                } catch {
                    throw InventoryError(description: "cannot check the scopes of issuer '\(name)': \(SafeError.describe(error))")
                }
                let problems = tokens.flatMap { token in
                    token.scopes.compactMap { scope in unknown[scope].map { "token \(token.id): scope \(scope): \($0)" } }
                }
                if !problems.isEmpty {
                    throw InventoryError(description: "issuer '\(name)': " + problems.joined(separator: "; ")
                                         + "; create the group roles or fix the scopes")
                }
            }
        }
        return observation
    }

    /// What each store holds under every key the manifests deliver to, as content fingerprints: one read per store.
    package static func observeStores(_ manifests: ManifestSet, stores: [String: any SecretStore]) async throws(InventoryError) -> [StoreKey: String?] {
        var keysByStore: [String: [String]] = [:]
        for token in manifests.tokens { for delivery in token.deliverTo { keysByStore[delivery.store, default: []].append(delivery.key) } }
        var contents: [StoreKey: String?] = [:]
        for (name, keys) in keysByStore.sorted(by: { $0.key < $1.key }) {
            // A write-only store cannot be looked into: its deliveries are planned from state.
            guard let store = stores[name] as? any ReadableSecretStore else { continue }
            let held: [String: String]
            do {
                held = try await store.fingerprints(keys: keys)
            } catch {
                throw InventoryError(description: "cannot refresh store '\(name)': \(error)")
            }
            for key in keys { contents[StoreKey(store: name, key: key)] = .some(held[key]) }
        }
        return contents
    }

}
