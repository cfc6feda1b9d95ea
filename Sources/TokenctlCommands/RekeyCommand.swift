import ArgumentParser
import Crypto
import Foundation
import TokenctlDrivers
import TokenctlModel
import TokenctlReconciler
import TokenctlState
import TokenctlStores

/// `tokenctl rekey`: rotate the master key that encrypts the stores and authenticates the audit log.
struct RekeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Rotate the master key: re-encrypt the stores and re-seal the audit log under a new key.",
        discussion: """
            Every encrypted-file store of the manifests that uses the master key (key: env:TOKENCTL_MASTER_KEY) is \
            written again under the new key, and the audit log is sealed again under the key derived from it; each \
            entry's content stays as it was. Stores with their own key are left as they are. \
            With the generated key (.tokenctl/master.key), rekey makes the new key and replaces the file. With \
            TOKENCTL_MASTER_KEY set, supply the new key in TOKENCTL_NEW_MASTER_KEY or --new-key-file, then give \
            TOKENCTL_MASTER_KEY the new key wherever tokenctl runs. \
            Nothing changes unless the -f paths are all the manifests, every store opens and the audit log \
            verifies. A rekey that is interrupted is finished by running it again; until then, other commands \
            refuse to start. Stop a running controller first, and restart it with the new key. Exit codes: \
            0 rotated, 1 error.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(help: "A file holding the new master key (32 bytes as base64 or hex); or set TOKENCTL_NEW_MASTER_KEY.")
    var newKeyFile: String?

    @Option(help: "Why, recorded in the audit log, e.g. \"yearly rotation\" or \"INC-42: key exposed\".")
    var reason: String?

    @OptionGroup var locking: LockOptions

    func validate() throws {
        if manifests.paths.isEmpty {
            throw ValidationError("Pass -f PATH: the manifests name the stores whose key is rotated.")
        }
        if let reason { try checkReason(reason) }
    }

    func run() async throws {
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let supplied = try suppliedKey()
        try requireState(manifests, holding: "there is no master key in use to rotate")
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true, holdingViolators: true)
        let directory = manifests.stateDirectory
        let store = try openState(directory, mode: .readWrite, url: manifests.stateURL)
        let lock = try await StateLockHolder.acquire(store, timeout: locking.lockTimeout,
                                                     ttl: StateBackend.lockTTL(url: manifests.stateURL))
        print("Rotating the master key of the state in \(directory).")
        let rotation = MasterKeyRotation(stateDirectory: directory, store: store, manifests: loaded.manifests, manifestPaths: manifests.paths,
                                         origin: RequestOrigin.current(manifestPaths: manifests.paths), reason: reason, now: now,
                                         suppliedKey: supplied, say: { print($0) }, checkpoint: FaultInjection.checkpoint)
        do {
            let done = try await rotation.run()
            await lock.release()
            print("Rekey complete: \(counted(done.stores, "store")) re-encrypted, \(counted(done.auditEntries, "audit entry", plural: "audit entries")) re-sealed.")
        } catch let refusal as MasterKeyRotation.Refusal {
            await lock.release()
            printError("tokenctl: error: \(refusal)")
            throw ExitCode(1)
        } catch {
            await lock.release()
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The new key from --new-key-file or TOKENCTL_NEW_MASTER_KEY, if one is given.
    private func suppliedKey() throws -> SymmetricKey? {
        do {
            if let newKeyFile {
                guard let key = try MasterKey.keyFile(newKeyFile) else {
                    throw ValidationError("Cannot read --new-key-file \(newKeyFile): check the path and its permissions.")
                }
                return key
            }
            if let text = ProcessInfo.processInfo.environment[MasterKeyRotation.newKeyVariable], !text.isEmpty {
                return try EncryptedFileStore.key(fromText: text, reference: "env:\(MasterKeyRotation.newKeyVariable)")
            }
            return nil
        } catch let error as StoreError {
            printError("tokenctl: error: the new master key: \(error)")
            throw ExitCode(1)
        }
    }
}
