import ArgumentParser
import Crypto
import Foundation
import Logging
import TokenctlBuiltinIssuer
import TokenctlEngine
import TokenctlModel
import TokenctlPostgresIssuer
import TokenctlReconciler
import TokenctlSQLite
import TokenctlState
import TokenctlStores

/// Why issuers or stores could not be opened; the message names the issuer or store and says what to check.
struct DriverSetupError: Error, CustomStringConvertible {
    var description: String
}

/// Builds the issuers and stores the manifests name: the composition root of apply and the controller.
enum DriverFactory {
    /// Opens the drivers, or prints why not and exits 1 (for one-shot commands).
    static func makeOrExit(_ manifests: ManifestSet, stateDirectory: String, state: StateBackend.Store) throws -> Drivers {
        do {
            return try make(manifests, stateDirectory: stateDirectory, state: state)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    static func make(_ manifests: ManifestSet, stateDirectory: String, state: StateBackend.Store) throws(DriverSetupError) -> Drivers {
        var issuers: [String: any CredentialIssuer] = [:]
        var unavailable: [String: String] = [:]
        for (name, issuer) in manifests.issuers {
            switch issuer.kind {
            case .builtin:
                do {
                    issuers[name] = BuiltinIssuer(authority: try BuiltinAuthority(directory: stateDirectory, mode: .readWrite), name: name)
                } catch {
                    throw DriverSetupError(description: "issuer '\(name)': \(error)")
                }
            case .postgres(let settings):
                // A postgres issuer that cannot be set up fails its own tokens' changes, not the whole apply.
                switch postgresIssuer(name, settings: settings) {
                case .success(let driver): issuers[name] = driver
                case .failure(let failure): unavailable[name] = "issuer '\(name)': \(failure.description)"
                }
            case .exec:
                break  // Not built yet: changes for these issuers fail with a message saying so.
            }
        }
        var drivers = Drivers(issuers: issuers, stores: try makeStores(manifests, stateDirectory: stateDirectory, createMasterKey: true),
                              state: state)
        drivers.unavailableIssuers = unavailable
        return drivers
    }

    /// The stores opened for reading only: a store whose key cannot be had without creating one is skipped with a
    /// warning that ends with `fallback` (what the command does instead).
    static func readOnlyStores(_ manifests: ManifestSet, stateDirectory: String, fallback: String) throws -> [String: any SecretStore] {
        try makeStores(manifests, stateDirectory: stateDirectory, createMasterKey: false, skip: { name, failure in
            printError("warning: store '\(name)' cannot be checked (\(failure)); \(fallback)")
        })
    }

    /// The stores the manifests name. Without `createMasterKey`, a missing generated master key is an error rather than
    /// created (read-only commands create nothing).
    static func makeStores(_ manifests: ManifestSet, stateDirectory: String, createMasterKey: Bool,
                           skip: ((String, DriverSetupError) -> Void)? = nil) throws(DriverSetupError) -> [String: any SecretStore] {
        var stores: [String: any SecretStore] = [:]
        for (name, store) in manifests.stores {
            switch store.kind {
            case .encryptedFile(let path, let reference):
                do {
                    let file = store.resolve(path)
                    // A store that already exists was written with some key: a new one would only fail to open it.
                    let existing = FileManager.default.fileExists(atPath: file) ? file : nil
                    let key = try MasterKey.resolve(reference, stateDirectory: stateDirectory, create: createMasterKey, existingStore: existing)
                    stores[name] = EncryptedFileStore(path: file, key: key, keyReference: reference.description)
                } catch {
                    let failure = DriverSetupError(description: "store '\(name)': \(error)")
                    guard let skip else { throw failure }
                    skip(name, failure)
                }
            case .dotenv(let path):
                stores[name] = DotenvStore(path: store.resolve(path))
            case .exec:
                break
            }
        }
        return stores
    }


    /// A postgres issuer with its admin URL resolved from the reference (the URL is never printed).
    static func postgresIssuer(_ name: String, settings: Issuer.PostgresSettings) -> Result<PostgresIssuer, DriverSetupError> {
        let url: String
        switch settings.url {
        case .environment(let variable):
            guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                return .failure(DriverSetupError(description: "the environment variable \(variable) (its admin URL) is not set"))
            }
            url = value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                return .failure(DriverSetupError(description: "cannot read its admin URL from \(path)"))
            }
            url = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do {
            let parallelism = Int(ProcessInfo.processInfo.environment["TOKENCTL_PG_CONNECTIONS"] ?? "") ?? 4
            return .success(try PostgresIssuer(name: name, settings: settings, adminURL: url, parallelism: parallelism,
                                               logger: Logger(label: "tokenctl.issuer.postgres")))
        } catch {
            return .failure(DriverSetupError(description: "its admin URL: \(error.description)"))
        }
    }
}
