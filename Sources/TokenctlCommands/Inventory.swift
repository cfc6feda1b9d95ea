import ArgumentParser
import TokenctlBuiltinIssuer
import TokenctlModel

/// `--refresh`: asks every issuer in the manifests for its inventory.
enum Inventory {
    static func observe(_ manifests: ManifestSet, stateDirectory: String, now: Timestamp) async throws -> Observation {
        var observation = Observation()
        for (name, issuer) in manifests.issuers.sorted(by: { $0.key < $1.key }) {
            switch issuer.kind {
            case .builtin:
                do {
                    let authority = try BuiltinAuthority(directory: stateDirectory, mode: .readOnly)
                    observation.inventories[name] = try authority.list(issuer: name)
                } catch {
                    printError("tokenctl: error: cannot refresh issuer '\(name)': \(error)")
                    throw ExitCode(1)
                }
            case .postgres, .exec:
                // Not built yet: say so rather than pretend the inventory is empty.
                printError("warning: issuer '\(name)' (type \(issuer.kind.typeName)) cannot list its inventory in this version; "
                           + "its credentials are planned from state only")
            }
        }
        return observation
    }
}
