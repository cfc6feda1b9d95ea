import ArgumentParser
import TokenctlBuiltinIssuer
import TokenctlEngine
import TokenctlModel

/// An issuer that could not list its inventory.
struct InventoryError: Error, CustomStringConvertible {
    var description: String
}

/// `--refresh`: asks every issuer in the manifests for its inventory.
enum Inventory {
    /// Asks the issuers an apply already opened; prints why not and exits 1 when one fails.
    static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer]) async throws -> Observation {
        do {
            return try await observe(manifests, issuers: issuers, warn: { printError("warning: " + $0) })
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Asks the issuers; `warn` hears about issuers that cannot list their inventory.
    static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer],
                        warn: (String) -> Void) async throws(InventoryError) -> Observation {
        var observation = Observation()
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
        }
        return observation
    }

    /// Opens the builtin authority read-only (nothing is created) and asks every issuer, for plan --refresh.
    static func observe(_ manifests: ManifestSet, stateDirectory: String) async throws -> Observation {
        var issuers: [String: any CredentialIssuer] = [:]
        for (name, issuer) in manifests.issuers {
            guard case .builtin = issuer.kind else { continue }  // Not built yet: observe(_:issuers:) says so.
            do {
                issuers[name] = BuiltinIssuer(authority: try BuiltinAuthority(directory: stateDirectory, mode: .readOnly), name: name)
            } catch {
                printError("tokenctl: error: cannot refresh issuer '\(name)': \(error)")
                throw ExitCode(1)
            }
        }
        return try await observe(manifests, issuers: issuers)
    }
}
