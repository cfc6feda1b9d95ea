import ArgumentParser
import Crypto
import Foundation
import TokenctlBuiltinIssuer
import TokenctlEngine
import Logging
import TokenctlModel
import TokenctlPostgresIssuer
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
            func resolve(_ path: String) -> String { DriverFactory.resolve(path, definedIn: store) }
            switch store.kind {
            case .encryptedFile(let path, let reference):
                do {
                    let file = resolve(path)
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
                stores[name] = DotenvStore(path: resolve(path))
            case .exec:
                break
            }
        }
        return stores
    }

    /// A store path as written in a manifest: relative to the file that defines the Store.
    static func resolve(_ path: String, definedIn store: Store) -> String {
        let base = (store.metadata.location.file as NSString).deletingLastPathComponent
        return path.hasPrefix("/") ? path : ((base.isEmpty ? "." : base) as NSString).appendingPathComponent(path)
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

/// The key that authenticates the audit log: derived from the master key (TOKENCTL_MASTER_KEY, else
/// `.tokenctl/master.key`); only `forRun` may make that key, and only when nothing needs an older one.
enum AuditKey {
    static func current(stateDirectory: String, create: Bool = false) -> Data? {
        guard let master = try? MasterKey.resolve(.environment(MasterKey.variable), stateDirectory: stateDirectory, create: create) else {
            return nil
        }
        return AuditLog.key(fromMasterKey: master)
    }

    /// The key for a run that changes credentials. A missing master key is made only while nothing needs the old one:
    /// no store written with the generated key exists, and no audit entry was sealed with it. Otherwise the key was
    /// lost, a new one must not pose as it, and the run stops with a message saying so.
    static func forRun(_ store: StateBackend.Store, stateDirectory: String, manifests: ManifestSet) async throws(StateError) -> Data? {
        if let interrupted = MasterKey.interruptedRotation(stateDirectory: stateDirectory) {
            throw .masterKey(detail: interrupted)
        }
        var create = try await store.lastAuditRecord().map { !AuditLog.isAuthenticated($0) } ?? true
        for store in manifests.stores.values {
            guard case .encryptedFile(let path, .environment(MasterKey.variable)) = store.kind else { continue }
            if FileManager.default.fileExists(atPath: DriverFactory.resolve(path, definedIn: store)) { create = false }
        }
        return current(stateDirectory: stateDirectory, create: create)
    }
}

/// The encryption key of an encrypted-file store.
enum MasterKey {
    static let variable = "TOKENCTL_MASTER_KEY"
    static let fileName = "master.key"

    /// Reads the key a reference names. `env:TOKENCTL_MASTER_KEY`, when unset, falls back to `master.key` in the
    /// state directory, created once (0600) with a notice.
    static func resolve(_ reference: SecretReference, stateDirectory: String, create: Bool = true,
                        existingStore: String? = nil) throws(StoreError) -> SymmetricKey {
        switch reference {
        case .environment(let name):
            if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty {
                return try EncryptedFileStore.key(fromText: value, reference: reference.description)
            }
            guard name == variable else {
                throw .keyUnavailable(reference: reference.description, detail: "the environment variable \(name) is not set")
            }
            return try fromStateDirectory(stateDirectory, create: create, existingStore: existingStore)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw .keyUnavailable(reference: reference.description, detail: "cannot read \(path)")
            }
            return try EncryptedFileStore.key(fromText: String(decoding: data, as: UTF8.self), reference: reference.description)
        }
    }

    /// Where `tokenctl rekey` keeps a generated new key until the rotation is complete.
    static func pendingPath(stateDirectory: String) -> String {
        (stateDirectory as NSString).appendingPathComponent(fileName + ".new")
    }

    /// Why nothing may use the master key yet: a rotation of the generated key was interrupted, so some stores may
    /// already be under the new key and the old one must not write to them or to the audit log.
    static func interruptedRotation(stateDirectory: String) -> String? {
        let pending = pendingPath(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: pending) else { return nil }
        return "a rotation of the master key was interrupted (\(pending) holds the new key); finish it first with: "
            + "tokenctl rekey --state-dir \(stateDirectory) -f MANIFESTS (never delete that file: stores may already be under it)"
    }

    static func fromStateDirectory(_ directory: String, create: Bool = true, existingStore: String? = nil) throws(StoreError) -> SymmetricKey {
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let interrupted = interruptedRotation(stateDirectory: directory) {
            throw .keyUnavailable(reference: path, detail: interrupted)
        }
        if let data = FileManager.default.contents(atPath: path) {
            return try EncryptedFileStore.key(fromText: String(decoding: data, as: UTF8.self), reference: path)
        }
        if let existingStore {
            throw .keyUnavailable(reference: "env:\(variable)", detail: "\(variable) is not set and \(path) does not exist, but the store "
                + "\(existingStore) does, written with a key that is not here; set \(variable) to that key or restore \(path) "
                + "(a new key would not open it, so none was made)")
        }
        guard create else {
            throw .keyUnavailable(reference: path, detail: "\(variable) is not set and \(path) does not exist")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .keyUnavailable(reference: path, detail: "cannot create \(directory)")
        }
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw .keyUnavailable(reference: path, detail: "cannot create it") }
        _ = text.withCString { Glibc.write(descriptor, $0, strlen($0)) }
        fsync(descriptor)
        close(descriptor)
        printError("notice: created a master key at \(path) (mode 0600). In production, supply your own in \(variable) "
                   + "(e.g. from your secret manager; make one with: openssl rand -base64 32).")
        return key
    }
}
