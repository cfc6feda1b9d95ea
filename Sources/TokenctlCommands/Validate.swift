import ArgumentParser
import Foundation
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// `tokenctl validate`: decode, validate and check policy; touches no state and no issuer.
struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check manifests: syntax, schema, references, literal secrets and policy.",
        discussion: "Exit codes: 0 valid, 1 errors, 3 policy violations only. Nothing is written anywhere."
    )

    @Option(name: [.customShort("f"), .customLong("filename")], parsing: .singleValue,
            help: "A manifest file or a directory searched recursively for .yaml/.yml files (repeatable).")
    var paths: [String] = []

    @Flag(help: "Print the diagnostics as JSON (format version 1).")
    var json = false

    @Option(help: "Judge time-dependent rules (exception expiry) as of this time: YYYY-MM-DD or RFC 3339.")
    var at: String?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH (a file or a directory), e.g. -f Examples/quickstart.") }
    }

    func run() async throws {
        let now = try ClockOption.moment(at)
        let result = TerminalProgress.around("Reading manifests") { ManifestLoader(registry: .standard).load(paths: paths, now: now) }
        if json {
            print(DiagnosticRenderer.json(result))
        } else {
            var renderer = DiagnosticRenderer(colors: useColors(fileDescriptor: 2))
            FileHandle.standardError.write(Data(renderer.render(result.diagnostics).utf8))
            print(Self.summary(result))
        }
        let code: Int32 = result.hasErrors ? 1 : result.hasPolicyViolations ? 3 : 0
        // Exit here, with the result still alive: freeing 100k decoded tokens only to exit costs a noticeable share of the run.
        fflush(nil)
        withExtendedLifetime(result) { Foundation.exit(code) }
    }

    static func summary(_ result: ManifestLoadResult) -> String {
        let counts = DiagnosticSummary(result.diagnostics)
        let set = result.manifests
        let scope = "\(counted(result.documents, "document")) in \(counted(result.files.count, "file"))"
        if result.hasErrors || result.hasPolicyViolations {
            return "Invalid: \(counted(counts.errors, "error")), \(counted(counts.policyViolations, "policy violation")), "
                + "\(counted(counts.warnings, "warning")) (\(scope))."
        }
        return "Valid: \(counted(set.tokens.count, "token")), \(counted(set.issuers.count, "issuer")), \(counted(set.stores.count, "store")), "
            + "\(counted(set.policies.count, "policy", plural: "policies")) (\(scope))"
            + "\(counts.warnings > 0 ? ", " + counted(counts.warnings, "warning") : "")."
    }
}

/// Reads `--at`, or the current time when it is absent; the only clock read of a command.
enum ClockOption {
    /// The current time, for commands that act (apply, reconcile): they have no `--at`.
    static func now() -> Timestamp { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }

    static func moment(_ text: String?) throws -> Timestamp {
        guard let text else { return now() }
        do {
            return try Timestamp(parsing: text)
        } catch {
            throw ValidationError("Invalid --at '\(text)': write a date such as 2027-03-01 or a time such as 2027-03-01T12:00:00Z.")
        }
    }

    /// Why `--at` is refused by a command that issues and revokes real credentials.
    static func refusedOnApply(_ command: String) -> String {
        "\(command) does not take --at: it issues and revokes real credentials, and a shifted clock would give them "
            + "shifted expiry and audit times. Preview a moment with plan --at, status --at or forecast; to see rotation "
            + "happen, give a token a short lifespan and rotation interval (e.g. lifespan: 10m, rotation: {every: 2m})."
    }
}
