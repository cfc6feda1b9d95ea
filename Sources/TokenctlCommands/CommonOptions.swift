import ArgumentParser
import Crypto
import Foundation
import TokenctlHTTP
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlPostgresState
import TokenctlReconciler
import TokenctlSQLite
import TokenctlStandardDrivers
import TokenctlState

/// `-f PATH…` and `--state-dir`, shared by the commands that read manifests and state.
struct ManifestOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filename")], parsing: .singleValue,
            help: "A manifest file or a directory searched recursively for .yaml/.yml files (repeatable).")
    var paths: [String] = []

    @Option(help: "The state directory (default: .tokenctl beside the first manifest path).")
    var stateDir: String?

    @Option(name: .customLong("state"),
            help: "Shared state on PostgreSQL: postgres://USER:PASSWORD@HOST:PORT/DB (or TOKENCTL_STATE_URL). Default: SQLite in the state directory.")
    var stateURLOption: String?

    var stateDirectory: String { StateLocation.directory(explicit: stateDir, manifestPaths: paths) }

    /// The state directory quoted for a message, saying why it is the current directory when nothing named it.
    var stateDirectoryForMessages: String {
        paths.isEmpty && stateDir == nil ? "'\(stateDirectory)' (no -f or --state-dir given, so the current directory)" : "'\(stateDirectory)'"
    }

    /// The PostgreSQL state URL, if state is shared: --state, else TOKENCTL_STATE_URL.
    var stateURL: String? { StateBackend.url(explicit: stateURLOption) }
}

/// `--retire-limit` and `--allow-mass-retirement`: the deletion protection of apply, reconcile and plan.
struct RetirementOptions: ParsableArguments {
    @Option(help: "The largest share of the managed tokens, in percent, that one run may retire (one token always may).")
    var retireLimit: Int = RetirementGuard.defaultLimitPercent

    @Flag(help: "Retire any number of tokens: the manifests are complete and the mass retirement is intended.")
    var allowMassRetirement = false

    @Flag(help: "The -f paths given are the complete manifests now: record them as the roots this state is managed from (a plan only checks them).")
    var newManifestRoots = false

    func validate() throws {
        guard (0...100).contains(retireLimit) else { throw ValidationError("--retire-limit takes a percentage from 0 to 100.") }
    }

    /// The guard in force; nil when lifted.
    var retirementGuard: RetirementGuard? { allowMassRetirement ? nil : RetirementGuard(limitPercent: retireLimit) }
}

/// Duration options read once, when the arguments are parsed: `0` or `0s` is none.
enum DurationArgument {
    /// A transform for `@Option` that names the option in its message.
    static func parser(_ option: String, allowZero: Bool = true) -> @Sendable (String) throws -> TokenDuration {
        { text in
            if allowZero && (text == "0" || text == "0s") { return TokenDuration(seconds: 0) }
            guard let duration = try? TokenDuration(parsing: text), duration.seconds > 0 else {
                throw ValidationError("Invalid \(option) '\(text)': write a duration such as 30s or 5m.")
            }
            return duration
        }
    }
}

/// `--lock-timeout`, for the commands that write state.
struct LockOptions: ParsableArguments {
    @Option(help: "How long to wait for the state lock held by another run, e.g. 30s (0s: do not wait).",
            transform: DurationArgument.parser("--lock-timeout"))
    var lockTimeout = TokenDuration(seconds: 0)
}

/// `--idle-timeout`, `--request-timeout` and `--max-connections`: what the HTTP endpoint allows each client.
struct ServerLimitOptions: ParsableArguments {
    @Option(help: "Close a connection idle this long between requests, or this slow to send a request's header (default 30s).",
            transform: DurationArgument.parser("--idle-timeout", allowZero: false))
    var idleTimeout = TokenDuration(seconds: 30)

    @Option(help: "Close a connection whose request body has not arrived this long after its header (default 10s).",
            transform: DurationArgument.parser("--request-timeout", allowZero: false))
    var requestTimeout = TokenDuration(seconds: 10)

    @Option(help: "Serve at most this many connections at once; more wait to be accepted.")
    var maxConnections: Int = 1_000

    func validate() throws {
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1.") }
    }

    var limits: ConnectionLimits {
        ConnectionLimits(idleSeconds: idleTimeout.seconds, requestSeconds: requestTimeout.seconds, maxConnections: maxConnections)
    }
}

/// Writes to stderr, after flushing stdout so that the two interleave in order.
func printError(_ text: String) {
    fflush(nil)
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

/// Loads the manifests; prints diagnostics and exits 1 (errors) or 3 (policy violations) when they are not usable.
/// With `holdingViolators` (plan, apply), policy violations do not stop the run: the tokens concerned are held
/// (`ManifestLoadResult.policyHolds`) and the caller exits 3 at the end.
func loadManifestsOrExit(_ paths: [String], now: Timestamp, quiet: Bool = false, holdingViolators: Bool = false) throws -> ManifestLoadResult {
    let result = TerminalProgress.around("Reading manifests") { ManifestLoader(registry: .standard).load(paths: paths, now: now) }
    var renderer = DiagnosticRenderer(colors: useColors(fileDescriptor: 2))
    let shown = quiet ? result.diagnostics.filter { $0.severity != .warning } : result.diagnostics
    if !shown.isEmpty { FileHandle.standardError.write(Data(renderer.render(shown).utf8)) }
    if result.hasErrors {
        printError("tokenctl: the manifests have errors; fix them and run again (tokenctl validate shows them too).")
        throw ExitCode(1)
    }
    if result.hasPolicyViolations {
        guard holdingViolators else {
            printError("tokenctl: the manifests violate policy; fix them and run again (tokenctl validate shows them too).")
            throw ExitCode(3)
        }
        if !quiet {
            printError("tokenctl: \(counted(result.policyHolds.count, "token")) violate\(result.policyHolds.count == 1 ? "s" : "") policy and "
                       + "get no new credential until they comply; every other change proceeds.")
        }
    }
    return result
}

/// Refuses a `--reason` that looks like it holds a secret: reasons go to the audit log and the plan, and an incident
/// responder may paste the leaked credential into one. A bare hexadecimal run passes: in a reason it is a commit
/// (`--reason "$GITHUB_REPOSITORY@$GITHUB_SHA"`), a build or a ticket id far more often than a secret.
func checkReason(_ reason: String?) throws {
    guard let reason, let match = SecretScanner.match(in: reason), !match.isBareHexadecimal else { return }
    throw ValidationError("--reason looks like it holds a secret (\(match.description)); it is recorded in the audit log, so "
                          + "describe the incident without the credential.")
}

/// Stops with a message naming where it looked when there is no state: only apply creates state.
func requireState(_ manifests: ManifestOptions, holding what: String) throws {
    guard !StateBackend.exists(directory: manifests.stateDirectory, url: manifests.stateURL) else { return }
    printError("tokenctl: error: there is no state in \(manifests.stateDirectoryForMessages), so \(what); pass -f with the manifests that were applied "
               + "(the state is .tokenctl beside the first path), --state-dir with the directory that holds state.db, or "
               + "--state for shared state on PostgreSQL")
    throw ExitCode(1)
}

/// Opens the state store (SQLite in `directory`, or PostgreSQL at `url`), turning state errors into a message and exit code 1.
func openState(_ directory: String, mode: SQLiteStateStore.Mode, url: String?) throws -> StateBackend.Store {
    do {
        return try StateBackend.open(directory: directory, url: url, mode: mode)
    } catch {
        printError("tokenctl: error: \(error)")
        throw ExitCode(1)
    }
}

extension StateLockHolder {
    /// Takes the state lock for a one-shot command as `RequestActor.name`, or prints why not and exits 1.
    static func acquire(_ store: any StateStore, timeout: TokenDuration, ttl: TokenDuration = TokenDuration(seconds: 900)) async throws -> StateLockHolder {
        do {
            return try await acquire(store, holder: RequestActor.name, timeout: timeout, ttl: ttl, log: { printError($0) })
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Runs an operation whose errors are full sentences, turning one into a message and exit code 1.
func orExit<T, Failure: Error>(_ body: () throws(Failure) -> T) throws -> T {
    do {
        return try body()
    } catch {
        printError("tokenctl: error: \(error)")
        throw ExitCode(1)
    }
}

/// Runs a state operation, turning its error into a message and exit code 1.
func withState<T>(_ body: () async throws(StateError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        printError("tokenctl: error: \(error)")
        throw ExitCode(1)
    }
}

/// Runs an operation, turning a state error into a message and exit code 1 (other errors, like `ExitCode`, pass).
func withStateErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as StateError {
        printError("tokenctl: error: \(error)")
        throw ExitCode(1)
    }
}

/// The manifests' digest, or a message and exit code 1 when a file cannot be read.
func manifestsDigest(_ files: [String]) throws -> String {
    do {
        return try ManifestDigest.of(files)
    } catch {
        printError("tokenctl: error: \(error)")
        throw ExitCode(1)
    }
}
