import ArgumentParser
import Foundation
import Logging
import TokenctlEngine
import TokenctlModel
import TokenctlReconciler
import TokenctlState

/// `tokenctl state`: operations on the state itself.
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Operations on the recorded state.",
        subcommands: [StateRebuildCommand.self]
    )
}

/// `tokenctl state rebuild`: recover lost state from the issuers' records and the stores.
struct StateRebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild lost or emptied state from the issuers' records and the stores.",
        discussion: """
            For each token of the manifests, asks its issuer which live credentials were issued for it (the builtin \
            issuer records the token and version with each credential) and reads the stores to see which of them \
            each key holds. The newest live version becomes active, older live ones retiring. Refuses to touch a \
            state that records any token. Issuers that cannot tell (postgres, exec) are listed and left out: \
            apply --start-from-empty-state issues their tokens again. Exit codes: 0 rebuilt, 1 error.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @OptionGroup var locking: LockOptions

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH, the manifests the state was applied from.") }
    }

    func run() async throws {
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true)
        let directory = manifests.stateDirectory
        let store = try openState(directory, mode: .readWrite, url: manifests.stateURL)
        let lock = try await StateLockHolder.acquire(store, timeout: locking.lockTimeout, ttl: StateBackend.lockTTL(url: manifests.stateURL))
        let code: Int32
        do {
            code = try await rebuildLocked(loaded.manifests, store: store, directory: directory, now: now)
            if code == 0 {
                // The rebuilt state is managed from the manifests it was rebuilt from.
                _ = try await withState { () async throws(StateError) in
                    try await ManifestRoots.check(store, paths: manifests.paths, acceptNew: true, record: true)
                }
            }
        } catch {
            await lock.release()
            throw error
        }
        await lock.release()
        if code != 0 { throw ExitCode(code) }
    }

    private func rebuildLocked(_ desired: ManifestSet, store: StateBackend.Store, directory: String, now: Timestamp) async throws -> Int32 {
        let recorded = try await withState { () async throws(StateError) in try await store.load() }
        guard recorded.tokens.isEmpty else {
            printError("tokenctl: error: the state already records \(counted(recorded.tokens.count, "token")); "
                       + "rebuild only fills an empty state and never overwrites one (plan --refresh shows how state and issuers differ)")
            return 1
        }
        let auditKey = try await withState { () async throws(StateError) in
            try await AuditKey.forRun(store, stateDirectory: directory, manifests: desired)
        }
        let drivers = try DriverSetup.standard(directory).openOrExit(desired, state: store)
        let rebuilt = await StateRecovery.rebuild(desired: desired, drivers: drivers, now: now)
        for note in rebuilt.notes { printError("note: \(note)") }
        let versions = rebuilt.tokens.reduce(0) { $0 + $1.versions.count }
        let delivered = rebuilt.tokens.reduce(0) { total, token in total + token.versions.reduce(0) { $0 + $1.deliveries.count } }
        let missing = desired.tokens.count - rebuilt.tokens.count
        let summary = "rebuilt \(rebuilt.tokens.count) of \(counted(desired.tokens.count, "token")) "
            + "(\(versions) live credential version\(versions == 1 ? "" : "s"), \(delivered) deliver\(delivered == 1 ? "y" : "ies") found)"
        // The rebuilt state and its audit entry in one transaction.
        let origin = RequestOrigin.current(manifestPaths: manifests.paths)
        let serial = try await withState { () async throws(StateError) in
            let sealed = try await AuditLog(store: store, key: auditKey).seal([origin.entry("state rebuild", at: now, detail: summary)])
            return try await store.write(rebuilt.tokens.map { .upsert($0) }, expectedSerial: recorded.serial, audit: sealed.records,
                                         anchor: sealed.anchor)
        }
        print("State \(summary). State serial \(serial).")
        if missing > 0 {
            print("\(missing) token\(missing == 1 ? " has" : "s have") no live credential to rebuild from; the next apply issues \(missing == 1 ? "it" : "them").")
        }
        print("Next: tokenctl plan --refresh \(manifests.paths.map { "-f \($0)" }.joined(separator: " ")) shows what is left to do.")
        return 0
    }
}
