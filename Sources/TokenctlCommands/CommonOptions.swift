import ArgumentParser
import Crypto
import Foundation
import TokenctlManifest
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// `-f PATH…` and `--state-dir`, shared by the commands that read manifests and state.
struct ManifestOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filename")], parsing: .singleValue,
            help: "A manifest file or a directory searched recursively for .yaml/.yml files (repeatable).")
    var paths: [String] = []

    @Option(help: "The state directory (default: .tokenctl beside the first manifest path).")
    var stateDir: String?

    var stateDirectory: String { StateLocation.directory(explicit: stateDir, manifestPaths: paths) }
}

/// Writes to stderr, after flushing stdout so that the two interleave in order.
func printError(_ text: String) {
    fflush(nil)
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

/// Loads the manifests; prints diagnostics and exits 1 (errors) or 3 (policy violations) when they are not usable.
func loadManifestsOrExit(_ paths: [String], now: Timestamp, quiet: Bool = false) throws -> ManifestLoadResult {
    let result = ManifestLoader().load(paths: paths, now: now)
    var renderer = DiagnosticRenderer(colors: useColors(fileDescriptor: 2))
    let shown = quiet ? result.diagnostics.filter { $0.severity != .warning } : result.diagnostics
    if !shown.isEmpty { FileHandle.standardError.write(Data(renderer.render(shown).utf8)) }
    if result.hasErrors {
        printError("tokenctl: the manifests have errors; fix them and run again (tokenctl validate shows them too).")
        throw ExitCode(1)
    }
    if result.hasPolicyViolations {
        printError("tokenctl: the manifests violate policy; nothing is planned until they comply.")
        throw ExitCode(3)
    }
    return result
}

/// Opens the state store, turning state errors into a message and exit code 1.
func openState(_ directory: String, mode: SQLiteStateStore.Mode) throws -> SQLiteStateStore {
    do {
        return try SQLiteStateStore(directory: directory, mode: mode)
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

/// A SHA-256 digest over the manifest files' paths and contents, in a stable order.
func manifestsDigest(_ files: [String]) throws -> String {
    var hasher = SHA256()
    for file in files.sorted() {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("tokenctl: error: cannot read '\(file)' to fingerprint the manifests")
            throw ExitCode(1)
        }
        hasher.update(data: Data((file as NSString).lastPathComponent.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: SHA256.hash(data: data).withUnsafeBytes { Data($0) })
    }
    return "sha256:" + Hex.string(hasher.finalize())
}
