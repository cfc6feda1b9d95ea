import Crypto
import Foundation
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlState
import TokenctlStores

/// The key that authenticates the audit log: derived from the master key (TOKENCTL_MASTER_KEY, else
/// `.tokenctl/master.key`); only `forRun` may make that key, and only when nothing needs an older one.
package enum AuditKey {
    /// The audit key of the master key in use, if there is one (`create` makes the generated key when missing).
    package static func current(stateDirectory: String, create: Bool = false) -> Data? {
        guard let master = try? MasterKey.resolve(.environment(MasterKey.variable), stateDirectory: stateDirectory, create: create) else {
            return nil
        }
        return AuditLog.key(fromMasterKey: master)
    }

    /// The key for a run that changes credentials. A missing master key is made only while nothing needs the old one:
    /// no store written with the generated key exists, and no audit entry was sealed with it. Otherwise the key was
    /// lost, a new one must not pose as it, and the run stops with a message saying so.
    package static func forRun(_ store: any StateStore & AuditLogStore, stateDirectory: String,
                              manifests: ManifestSet) async throws(StateError) -> Data? {
        if let interrupted = MasterKey.interruptedRotation(stateDirectory: stateDirectory) {
            throw .masterKey(detail: interrupted)
        }
        // Recorded in the state, so that every process sharing it sees it, whichever key it was given.
        if let rotating = try await store.setting(MasterKey.rotationSetting), !rotating.isEmpty {
            throw .masterKey(detail: "a rotation of the master key (tokenctl rekey) was interrupted, so some stores may be under the new "
                             + "key already; finish it first by running tokenctl rekey again with the same new key")
        }
        var create = try await store.lastAuditRecord().map { !AuditLog.isAuthenticated($0) } ?? true
        for store in manifests.stores.values {
            guard let file = store.driver.settings as? any KeyedFileSettings, file.key == .environment(MasterKey.variable) else { continue }
            if FileManager.default.fileExists(atPath: store.resolve(file.path)) { create = false }
        }
        return current(stateDirectory: stateDirectory, create: create)
    }
}

/// The encryption key of an encrypted-file store.
package enum MasterKey {
    /// The environment variable that holds the master key.
    package static let variable = "TOKENCTL_MASTER_KEY"
    /// The generated key's file in the state directory.
    package static let fileName = "master.key"

    /// Reads the key a reference names. `env:TOKENCTL_MASTER_KEY`, when unset, falls back to `master.key` in the
    /// state directory, created once (0600) with a notice.
    package static func resolve(_ reference: SecretReference, stateDirectory: String, create: Bool = true,
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
            guard let key = try keyFile(path, reference: reference.description) else {
                throw .keyUnavailable(reference: reference.description, detail: "cannot read \(path)")
            }
            return key
        }
    }

    /// The key a file holds (base64 or hex), or nil when the file cannot be read; `reference` names it in errors.
    package static func keyFile(_ path: String, reference: String? = nil) throws(StoreError) -> SymmetricKey? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try EncryptedFileStore.key(fromText: String(decoding: data, as: UTF8.self), reference: reference ?? path)
    }

    /// The state setting that names (by its key check) the new key of a rotation in progress; empty when none is.
    package static let rotationSetting = "master_key_rotation"

    /// Where `tokenctl rekey` keeps a generated new key until the rotation is complete.
    package static func pendingPath(stateDirectory: String) -> String {
        (stateDirectory as NSString).appendingPathComponent(fileName + ".new")
    }

    /// Why nothing may use the master key yet: a rotation of the generated key was interrupted, so some stores may
    /// already be under the new key and the old one must not write to them or to the audit log.
    package static func interruptedRotation(stateDirectory: String) -> String? {
        let pending = pendingPath(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: pending) else { return nil }
        return "a rotation of the master key was interrupted (\(pending) holds the new key); finish it first with: "
            + "tokenctl rekey --state-dir \(stateDirectory) -f MANIFESTS (never delete that file: stores may already be under it)"
    }

    /// The generated key in `directory`, made (0600, with a notice on stderr) when missing and `create` allows it.
    package static func fromStateDirectory(_ directory: String, create: Bool = true, existingStore: String? = nil) throws(StoreError) -> SymmetricKey {
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let interrupted = interruptedRotation(stateDirectory: directory) {
            throw .keyUnavailable(reference: path, detail: interrupted)
        }
        if let key = try keyFile(path) { return key }
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
        FileHandle.standardError.write(Data(("notice: created a master key at \(path) (mode 0600). In production, supply your own in "
            + "\(variable) (e.g. from your secret manager; make one with: openssl rand -base64 32).\n").utf8))
        return key
    }
}
