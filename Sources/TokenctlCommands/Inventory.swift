import ArgumentParser
import TokenctlBuiltinIssuer
import TokenctlEngine
import TokenctlModel

/// `--refresh`: asks every issuer in the manifests for its inventory.
enum Inventory {
    /// Asks the issuers an apply already opened.
    static func observe(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer]) async throws -> Observation {
        var observation = Observation()
        for (name, issuer) in manifests.issuers.sorted(by: { $0.key < $1.key }) {
            guard let driver = issuers[name] else {
                printError("warning: issuer '\(name)' (type \(issuer.kind.typeName)) cannot list its inventory in this version; "
                           + "its credentials are planned from state only")
                continue
            }
            do {
                observation.inventories[name] = try await driver.list()
            } catch {
                printError("tokenctl: error: cannot refresh issuer '\(name)': \(SafeError.describe(error))")
                throw ExitCode(1)
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
