import ArgumentParser
import TokenctlBuiltinIssuer
import TokenctlEngine
import TokenctlModel
import TokenctlStores

/// An issuer that could not list its inventory.
struct InventoryError: Error, CustomStringConvertible {
    var description: String
}

/// `--refresh`: asks every issuer in the manifests for its inventory.
enum Inventory {
    /// Asks the issuers an apply already opened; prints why not and exits 1 when one fails.
    static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer],
                        stores: [String: any SecretStore]) async throws -> Observation {
        do {
            return try await observe(manifests, issuers: issuers, stores: stores, warn: { printError("warning: " + $0) })
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Asks the issuers; `warn` hears about issuers that cannot list their inventory.
    static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer], stores: [String: any SecretStore],
                        warn: (String) -> Void) async throws(InventoryError) -> Observation {
        var observation = Observation()
        observation.storeContents = try await observeStores(manifests, stores: stores)
        for (name, issuer) in manifests.issuers.sorted(by: { $0.key < $1.key }) {
            guard let driver = issuers[name] else {
                warn("issuer '\(name)' (type \(issuer.kind.typeName)) cannot list its inventory in this version; "
                     + "its credentials are planned from state only")
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
    static func observeStores(_ manifests: ManifestSet, stores: [String: any SecretStore]) async throws(InventoryError) -> [StoreKey: String?] {
        var keysByStore: [String: [String]] = [:]
        for token in manifests.tokens { for delivery in token.deliverTo { keysByStore[delivery.store, default: []].append(delivery.key) } }
        var contents: [StoreKey: String?] = [:]
        for (name, keys) in keysByStore.sorted(by: { $0.key < $1.key }) {
            guard let store = stores[name] else { continue }
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

    /// Opens the builtin authority read-only (nothing is created) and asks every issuer, for plan --refresh.
    static func observe(_ manifests: ManifestSet, stateDirectory: String) async throws -> Observation {
        var issuers: [String: any CredentialIssuer] = [:]
        for (name, issuer) in manifests.issuers {
            switch issuer.kind {
            case .builtin:
                do {
                    issuers[name] = BuiltinIssuer(authority: try BuiltinAuthority(directory: stateDirectory, mode: .readOnly), name: name)
                } catch {
                    printError("tokenctl: error: cannot refresh issuer '\(name)': \(error)")
                    throw ExitCode(1)
                }
            case .postgres(let settings):
                switch DriverFactory.postgresIssuer(name, settings: settings) {
                case .success(let driver): issuers[name] = driver
                case .failure(let failure):
                    printError("tokenctl: error: cannot refresh issuer '\(name)': \(failure)")
                    throw ExitCode(1)
                }
            case .exec:
                continue  // Not built yet: observe(_:issuers:) says so.
            }
        }
        let stores: [String: any SecretStore]
        do {
            stores = try DriverFactory.readOnlyStores(manifests, stateDirectory: stateDirectory, fallback: "its deliveries are planned from state only")
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        return try await observe(manifests, issuers: issuers, stores: stores)
    }
}
