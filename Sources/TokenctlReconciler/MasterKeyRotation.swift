import Crypto
import Foundation
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlState
import TokenctlStores

/// Rotates the master key (`tokenctl rekey`): every encrypted-file store on the master key is written again under the
/// new key, and the audit log is sealed again under the audit key derived from it.
///
/// Crash-safe by being resumable, step by step: a generated new key is written to `master.key.new` before any store
/// changes; each store is rewritten atomically and recognised afterwards by its key check; the audit log is re-sealed
/// in one transaction and recognised afterwards by verifying under the new key; `master.key` is replaced last. A run
/// interrupted anywhere is finished by running rekey again; until then other commands refuse to start.
package struct MasterKeyRotation: Sendable {
    /// Where the current master key comes from.
    package enum Source: Equatable, Sendable {
        /// `TOKENCTL_MASTER_KEY`: managed outside tokenctl.
        case environment
        /// The key tokenctl generated in the state directory.
        case generated(path: String)
    }

    /// Why a rotation cannot start; each message says what to do.
    package struct Refusal: Error, CustomStringConvertible {
        /// The sentence.
        package var description: String
    }

    let stateDirectory: String
    let store: any StateStore & AuditLogStore
    let manifests: ManifestSet
    let manifestPaths: [String]
    let origin: RequestOrigin
    let reason: String?
    let now: Timestamp
    /// A new key the operator supplies (TOKENCTL_NEW_MASTER_KEY or --new-key-file), as its bytes; nil to generate one.
    let suppliedKey: Data?
    let say: @Sendable (String) -> Void
    let checkpoint: @Sendable (String) -> Void

    /// The environment variable that supplies the new key.
    package static let newKeyVariable = "TOKENCTL_NEW_MASTER_KEY"

    /// Creates a rotation of the master key of the state in `stateDirectory`, for the stores `manifests` names.
    package init(stateDirectory: String, store: any StateStore & AuditLogStore, manifests: ManifestSet, manifestPaths: [String],
                origin: RequestOrigin, reason: String?,
                now: Timestamp, suppliedKey: SymmetricKey?, say: @escaping @Sendable (String) -> Void,
                checkpoint: @escaping @Sendable (String) -> Void = { _ in }) {
        self.stateDirectory = stateDirectory
        self.store = store
        self.manifests = manifests
        self.manifestPaths = manifestPaths
        self.origin = origin
        self.reason = reason
        self.now = now
        self.suppliedKey = suppliedKey.map(Self.bytes(of:))
        self.say = say
        self.checkpoint = checkpoint
    }

    var keyPath: String { (stateDirectory as NSString).appendingPathComponent(MasterKey.fileName) }
    var pendingPath: String { MasterKey.pendingPath(stateDirectory: stateDirectory) }

    /// An encrypted-file store on the master key.
    struct StoreFile {
        var name: String
        var path: String
    }

    /// Runs the rotation, or resumes an interrupted one. Changes nothing unless every check passes first.
    package func run() async throws -> (stores: Int, auditEntries: Int) {
        let (source, oldKey) = try currentKey()
        let (newKey, generated) = try newKey(source: source)
        if Self.bytes(of: newKey) == Self.bytes(of: oldKey) {
            throw Refusal(description: "the new master key is the one in use, so there is nothing to rotate; make a new one with: "
                          + "openssl rand -base64 32")
        }

        let identifier = EncryptedFileStore.keyIdentifier(newKey)
        if let rotating = try await store.setting(MasterKey.rotationSetting), !rotating.isEmpty, rotating != identifier {
            throw Refusal(description: "an interrupted rotation to another new key (key check \(rotating.prefix(12))…) must be finished "
                          + "first: run tokenctl rekey again with that key")
        }
        if !generated, try await store.setting(MasterKey.rotationSetting) == identifier { say("Resuming the interrupted rotation.") }

        // Check everything before changing anything: the manifests are all of them (a store they leave out would stay
        // under a key that is then gone), each store opens with one of the two keys, and the audit log verifies under
        // one of them.
        if let refusal = try await ManifestRoots.check(store, paths: manifestPaths, acceptNew: false, record: false) {
            throw Refusal(description: "\(refusal); rekey re-encrypts the stores the manifests name, so it needs all of them. Nothing was changed")
        }
        let delivered = Set(try await store.load().tokens.values.flatMap { token in
            token.versions.filter { $0.status != .revoked }.flatMap { $0.deliveries.map(\.store) }
        })
        let undefined = delivered.subtracting(manifests.stores.keys).sorted()
        if !undefined.isEmpty {
            throw Refusal(description: "the state records secrets delivered to \(undefined.map { "'\($0)'" }.joined(separator: ", ")), which the "
                          + "manifests given do not define; pass every manifest, so that no store is left under the old key. Nothing was changed")
        }
        let files = masterKeyStores()
        var pending: [(StoreFile, current: EncryptedFileStore, next: EncryptedFileStore)] = []
        for file in files {
            // Each store gets its own copy of the keys: a key is not Sendable, and the store is an actor.
            let current = EncryptedFileStore(path: file.path, key: SymmetricKey(data: Self.bytes(of: oldKey)), keyReference: "the current master key")
            let next = EncryptedFileStore(path: file.path, key: SymmetricKey(data: Self.bytes(of: newKey)), keyReference: "the new master key")
            do {
                switch try await current.reencryption(into: next) {
                case .absent: say("  store '\(file.name)' (\(file.path)): not written yet, nothing to re-encrypt")
                case .alreadyUnderNewKey: say("  store '\(file.name)' (\(file.path)): already under the new key")
                case .reencrypted: pending.append((file, current, next))
                }
            } catch {
                throw Refusal(description: "store '\(file.name)' cannot be re-encrypted, so nothing was changed: \(error)")
            }
        }
        let oldAuditKey = AuditLog.key(fromMasterKey: oldKey)
        let newAuditKey = AuditLog.key(fromMasterKey: newKey)
        let (records, anchor, serial) = (try await store.auditRecords(), try await store.auditAnchor(), try await store.serial())
        let underNewKey = AuditLog.verify(records, anchor: anchor, key: newAuditKey, stateSerial: serial)
        let auditDone = underNewKey.problem == nil && underNewKey.authenticated > 0
        if !auditDone, let problem = AuditLog.verify(records, anchor: anchor, key: oldAuditKey, stateSerial: serial).problem {
            throw Refusal(description: "the audit log fails verification under the current master key (\(problem)); re-sealing it under a "
                          + "new key would hide that, so nothing was changed (tokenctl audit --verify shows the problem)")
        }

        // From here on, until the end, every run that would use a master key refuses to start.
        try await store.setSetting(MasterKey.rotationSetting, to: identifier)
        if !auditDone {
            let detail = "rotating the master key: \(counted(pending.count, "store")) to re-encrypt, the audit log to re-seal"
            try await AuditLog(store: store, key: oldAuditKey).append([origin.entry("rekey", at: now, reason: reason, detail: detail)])
        }
        if generated {
            try writePendingKey(newKey)
            checkpoint("rekey-after-new-key")
        }
        for (file, current, next) in pending {
            do {
                if case .reencrypted(let entries) = try await current.reencrypt(into: next) {
                    say("  store '\(file.name)' (\(file.path)): re-encrypted \(counted(entries, "entry", plural: "entries"))")
                }
            } catch {
                throw Refusal(description: "store '\(file.name)': \(error); run tokenctl rekey again to finish (stores already re-encrypted are recognised)")
            }
            checkpoint("rekey-after-store")
        }
        var resealedCount = 0
        if auditDone {
            say("  audit log: already sealed under the new key")
        } else {
            // Re-read: the request entry above is part of the log now.
            let current = try await store.auditRecords()
            let detail = "master key rotated: \(counted(pending.count, "store")) re-encrypted, "
                + "\(counted(current.count, "audit entry", plural: "audit entries")) re-sealed"
            var done = origin.entry("rekey", at: now, kind: "change", reason: reason, detail: detail)
            done.result = "ok"
            let sealed = try AuditLog.resealed(current, anchor: try await store.auditAnchor(), from: oldAuditKey, to: newAuditKey,
                                               stateSerial: serial, appending: [done])
            try await store.resealAudit(sealed.records, anchor: sealed.anchor)
            resealedCount = current.count
            say("  audit log: \(counted(resealedCount, "entry", plural: "entries")) re-sealed under the new key")
            checkpoint("rekey-after-audit")
        }
        try finish(source: source, generated: generated, oldKey: oldKey)
        try await store.setSetting(MasterKey.rotationSetting, to: "")
        return (pending.count, resealedCount)
    }

    /// The master key in use: TOKENCTL_MASTER_KEY, else the generated key file.
    private func currentKey() throws -> (Source, SymmetricKey) {
        if let text = ProcessInfo.processInfo.environment[MasterKey.variable], !text.isEmpty {
            if FileManager.default.fileExists(atPath: pendingPath) {
                throw Refusal(description: "\(pendingPath) holds the new key of an interrupted rotation of the generated master key; "
                              + "unset \(MasterKey.variable) and run tokenctl rekey again to finish it")
            }
            return (.environment, try EncryptedFileStore.key(fromText: text, reference: "env:\(MasterKey.variable)"))
        }
        guard let key = try MasterKey.keyFile(keyPath) else {
            throw Refusal(description: "there is no master key to rotate: \(MasterKey.variable) is not set and \(keyPath) does not exist "
                          + "(pass the -f or --state-dir of the state whose key to rotate)")
        }
        return (.generated(path: keyPath), key)
    }

    /// The key to rotate to, and whether tokenctl generated it (and so keeps it in the state directory).
    private func newKey(source: Source) throws -> (SymmetricKey, generated: Bool) {
        if let pending = try MasterKey.keyFile(pendingPath) {
            if let suppliedKey, suppliedKey != Self.bytes(of: pending) {
                throw Refusal(description: "an interrupted rotation left its new key in \(pendingPath), and the key supplied now differs; "
                              + "finish that rotation first (tokenctl rekey without a new key), then rotate again")
            }
            say("Resuming the interrupted rotation to the key in \(pendingPath).")
            return (pending, true)
        }
        if let suppliedKey { return (SymmetricKey(data: suppliedKey), false) }
        guard source != .environment else {
            throw Refusal(description: "\(MasterKey.variable) is set, so the master key is managed outside tokenctl: put the new key in "
                          + "\(Self.newKeyVariable) or a file passed with --new-key-file (make one with: openssl rand -base64 32), "
                          + "and run tokenctl rekey again")
        }
        return (SymmetricKey(size: .bits256), true)
    }

    /// The stores the manifests name whose files are encrypted with the master key, each file once.
    private func masterKeyStores() -> [StoreFile] {
        var files: [String: StoreFile] = [:]
        for (name, store) in manifests.stores.sorted(by: { $0.key < $1.key }) {
            guard let settings = store.driver.settings as? any KeyedFileSettings else { continue }
            let file = store.resolve(settings.path)
            let reference = settings.key
            guard reference == .environment(MasterKey.variable) else {
                say("  store '\(name)' (\(file)): has its own key (\(reference)), not the master key; not changed")
                continue
            }
            if files[file] == nil { files[file] = StoreFile(name: name, path: file) }
        }
        return files.values.sorted { $0.name < $1.name }
    }

    private func writePendingKey(_ key: SymmetricKey) throws {
        guard !FileManager.default.fileExists(atPath: pendingPath) else { return }
        let text = Self.bytes(of: key).base64EncodedString() + "\n"
        do {
            try atomicWrite(Data(text.utf8), to: pendingPath)
        } catch {
            throw Refusal(description: "cannot write the new master key: \(error)")
        }
    }

    /// The last step: the generated key file now holds the new key, or is removed when the new key lives elsewhere.
    private func finish(source: Source, generated: Bool, oldKey: SymmetricKey) throws {
        if generated {
            guard rename(pendingPath, keyPath) == 0 else {
                throw Refusal(description: "cannot move \(pendingPath) to \(keyPath) (\(String(cString: strerror(errno)))); "
                              + "fix the directory's permissions and run tokenctl rekey again")
            }
            syncDirectory(stateDirectory)
            say("  master key: \(keyPath) now holds the new key")
        } else if case .generated(let path) = source {
            // The old key opens nothing now, and leaving it would let a run without the new key fall back to it.
            guard unlink(path) == 0 || errno == ENOENT else {
                throw Refusal(description: "cannot remove \(path), which holds the old key (\(String(cString: strerror(errno)))); remove it, "
                              + "and supply the new key in \(MasterKey.variable) from now on")
            }
            syncDirectory(stateDirectory)
            say("  master key: removed \(path); from now on supply the new key in \(MasterKey.variable)")
        } else {
            // A copy of the old key left from before the key moved to the environment would be picked up by any run
            // without TOKENCTL_MASTER_KEY; it opens nothing now.
            if let copy = (try? MasterKey.keyFile(keyPath)) ?? nil, Self.bytes(of: copy) == Self.bytes(of: oldKey) {
                if unlink(keyPath) == 0 {
                    syncDirectory(stateDirectory)
                    say("  master key: removed \(keyPath), a copy of the old key")
                } else {
                    say("  master key: \(keyPath) holds a copy of the old key and could not be removed; remove it")
                }
            }
            say("  master key: set \(MasterKey.variable) to the new key wherever tokenctl runs (CI secrets, the controller)")
        }
    }

    private func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    static func bytes(of key: SymmetricKey) -> Data { key.withUnsafeBytes { Data($0) } }
}
