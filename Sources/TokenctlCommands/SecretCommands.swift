import ArgumentParser
import Foundation
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlReconciler
import TokenctlSQLite
import TokenctlState
import TokenctlStores

/// Finds the token a command names and reads its current secret from the stores it was delivered to.
enum SecretRequest {
    static func secret(for name: String, manifests: ManifestOptions) async throws -> Secret {
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ValidationError("Name the token as NAMESPACE/NAME, e.g. payments/orders-api-ci.") }
        let id = TokenID(namespace: parts[0], name: parts[1])
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true)
        try requireState(manifests, holding: "no token has a secret yet")
        let store = try openState(manifests.stateDirectory, mode: .readOnly, url: manifests.stateURL)
        let state = try await withState { () async throws(StateError) in try await store.load() }
        guard let version = state.tokens[id]?.active else {
            if !loaded.manifests.tokens.contains(where: { $0.id == id }) {
                printError("tokenctl: error: token \(id) is not in the manifests\(state.tokens[id] == nil ? "" : " (it was retired)"); "
                           + "check the name (tokenctl status lists the managed tokens)")
            } else {
                printError("tokenctl: error: token \(id) has no active credential yet; run tokenctl apply to issue it")
            }
            throw ExitCode(1)
        }
        let stores = try DriverSetup.standard(manifests.stateDirectory).storesForReading(loaded.manifests, fallback: "it is not read")
        if let secret = await SecretLookup.secret(of: version, in: stores, note: { printError("warning: " + $0) }) {
            return secret
        }
        printError("tokenctl: error: no store holds v\(version.version) of \(id); run tokenctl apply to redeliver it")
        throw ExitCode(1)
    }
}

/// `tokenctl secret get`: prints a token's current secret, on explicit request only.
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Read a delivered secret.",
        subcommands: [Get.self]
    )

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a token's current secret (to a pipe or file; to a terminal only with --reveal)."
        )

        @OptionGroup var manifests: ManifestOptions

        @Argument(help: "The token, as NAMESPACE/NAME.")
        var token: String

        @Flag(help: "Print the secret even when stdout is a terminal.")
        var reveal = false

        func run() async throws {
            if manifests.paths.isEmpty { throw ValidationError("Pass -f PATH: the manifests say which stores hold the secret.") }
            if isatty(1) == 1 && !reveal {
                printError("tokenctl: error: refusing to print a secret to a terminal; pipe it (e.g. | tokenctl verify) or pass --reveal")
                throw ExitCode(1)
            }
            let secret = try await SecretRequest.secret(for: token, manifests: manifests)
            secret.withRevealed { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        }
    }
}

/// `tokenctl exec`: runs a command with secrets in its environment.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command with tokens' secrets in environment variables.",
        discussion: "Example: tokenctl exec -f manifests --env API_TOKEN=payments/orders-api-ci -- ./deploy.sh"
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(name: .customLong("env"), parsing: .singleValue, help: "VAR=NAMESPACE/NAME (repeatable).")
    var variables: [String] = []

    // After `--` only, so that `tokenctl exec --help` is help and not a command named --help.
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func run() async throws {
        let arguments = command
        guard !arguments.isEmpty else { throw ValidationError("Give the command to run after --, e.g. -- ./deploy.sh.") }
        if manifests.paths.isEmpty { throw ValidationError("Pass -f PATH: the manifests say which stores hold the secrets.") }
        for variable in variables {
            guard let equals = variable.firstIndex(of: "="), equals != variable.startIndex else {
                throw ValidationError("Invalid --env '\(variable)': write VAR=NAMESPACE/NAME.")
            }
            let secret = try await SecretRequest.secret(for: String(variable[variable.index(after: equals)...]), manifests: manifests)
            secret.withRevealed { _ = setenv(String(variable[..<equals]), $0, 1) }
        }
        let argv = arguments.map { strdup($0) } + [nil]
        umask(Tokenctl.inheritedUmask)
        execvp(arguments[0], argv)
        printError("tokenctl: error: cannot run \(arguments[0]): \(String(cString: strerror(errno)))")
        throw ExitCode(1)
    }
}
