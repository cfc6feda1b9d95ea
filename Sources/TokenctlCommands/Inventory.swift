import ArgumentParser
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler

extension Inventory {
    /// Asks the issuers an apply already opened; prints why not and exits 1 when one fails.
    static func observeOrExit(_ manifests: ManifestSet, issuers: [String: any CredentialIssuer],
                              stores: [String: any SecretStore]) async throws -> Observation {
        do {
            return try await observe(manifests, issuers: issuers, stores: stores, warn: { printError("warning: " + $0) })
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Opens the issuers and stores without creating anything and asks them, for plan --refresh.
    static func observeOrExit(_ manifests: ManifestSet, stateDirectory: String) async throws -> Observation {
        let setup = DriverSetup.standard(stateDirectory)
        let issuers: [String: any CredentialIssuer]
        let stores: [String: any SecretStore]
        do {
            issuers = try setup.issuersForReading(manifests)
            stores = try setup.storesForReading(manifests, skip: { name, failure in
                printError("warning: store '\(name)' cannot be checked (\(failure)); its deliveries are planned from state only")
            })
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        return try await observeOrExit(manifests, issuers: issuers, stores: stores)
    }
}
