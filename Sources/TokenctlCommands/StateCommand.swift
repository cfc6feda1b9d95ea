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
        let outcome: StateRebuild.Outcome
        do {
            outcome = try await StateRebuild(store: store, directory: directory, paths: manifests.paths, registry: .standard)
                .run(loaded.manifests, now: now)
        } catch {
            await lock.release()
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        await lock.release()
        switch outcome {
        case .stateNotEmpty(let tokens):
            printError("tokenctl: error: the state already records \(counted(tokens, "token")); "
                       + "rebuild only fills an empty state and never overwrites one (plan --refresh shows how state and issuers differ)")
            throw ExitCode(1)
        case let .rebuilt(summary, serial, missing, notes):
            for note in notes { printError("note: \(note)") }
            print("State \(summary). State serial \(serial).")
            if missing > 0 {
                print("\(missing) token\(missing == 1 ? " has" : "s have") no live credential to rebuild from; the next apply issues \(missing == 1 ? "it" : "them").")
            }
            print("Next: tokenctl plan --refresh \(manifests.paths.map { "-f \($0)" }.joined(separator: " ")) shows what is left to do.")
        }
    }
}
