import ArgumentParser
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlReconciler
import TokenctlStandardDrivers
import TokenctlState

extension DriverSetup {
    /// The drivers of this build of tokenctl, for a state directory.
    static func standard(_ stateDirectory: String) -> DriverSetup {
        DriverSetup(registry: .standard, stateDirectory: stateDirectory)
    }

    /// Opens the drivers, or prints why not and exits 1 (for one-shot commands).
    func openOrExit(_ manifests: ManifestSet, state: any StateStore) throws -> Drivers {
        do {
            return try open(manifests, state: state)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The stores opened for reading only: a store that cannot be opened without creating something is skipped with a
    /// warning that ends with `fallback` (what the command does instead).
    func storesForReading(_ manifests: ManifestSet, fallback: String) throws -> [String: any SecretStore] {
        try storesForReading(manifests, skip: { name, failure in
            printError("warning: store '\(name)' cannot be checked (\(failure)); \(fallback)")
        })
    }
}
