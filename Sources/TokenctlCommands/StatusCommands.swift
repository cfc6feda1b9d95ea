import ArgumentParser
import Foundation
import TokenctlBuiltinIssuer
import TokenctlController
import TokenctlDrivers
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlStandardDrivers
import TokenctlState

/// `tokenctl status`: every managed token and how it stands.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every managed token: issuer, version, age, expiry, next rotation, last use, health."
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Print as JSON (format version 1).")
    var json = false

    @Option(help: "Judge as of this time (YYYY-MM-DD or RFC 3339).")
    var at: String?

    @Option(help: "Only tokens not used for this long, e.g. 30d (never-used tokens count from their first issue).")
    var unused: String?

    func validate() throws {
        if let unused, (try? TokenDuration(parsing: unused)) == nil {
            throw ValidationError("Invalid --unused '\(unused)': write a duration such as 30d.")
        }
    }

    func run() async throws {
        let now = try ClockOption.moment(at)
        let directory = manifests.stateDirectory
        try requireState(manifests, holding: "no token is managed yet (tokenctl apply creates it)")
        let store = try openState(directory, mode: .readOnly, url: manifests.stateURL)
        let state = try await withState { () async throws(StateError) in try await store.load() }
        let lastUsed = BuiltinAuthority.lastUsedTimes(state, directory: directory)
        var rows = ControllerStatusFile.annotate(TokenStatus.rows(state, lastUsed: lastUsed, now: now), directory: directory)
        rows = Self.flagLostAuthority(rows, state: state, paths: manifests.paths, directory: directory)
        if !manifests.paths.isEmpty {
            // The stores are defined in the manifests: with -f, what they hold is compared with what was delivered.
            let loaded = ManifestLoader(registry: .standard).load(paths: manifests.paths, now: now)
            rows = await StoreCheck.flagMismatches(rows, state: state, manifests: loaded.manifests, setup: .standard(directory),
                                                   warn: { printError("warning: " + $0) })
        }
        if let threshold = unused.flatMap({ try? TokenDuration(parsing: $0) }) {
            rows = rows.filter { UnusedTokens.isUnused($0, now: now, threshold: threshold) }
            if rows.isEmpty && !json {
                print("No token has gone unused for \(threshold).")
                return
            }
        }
        if json {
            print(try PlanJSON.encode(TokenStatus.Report(generatedAt: now, stateSerial: state.serial, tokens: rows)))
        } else {
            print(TokenStatus.table(rows), terminator: "")
            if let notices = try? await store.noticeSummary(), notices.pending > 0 {
                print(Self.noticeLine(notices, now: now))
            }
        }
    }

    /// The outbox line under the table, when notices wait: how many, how many failing, since when.
    static func noticeLine(_ summary: NoticeOutboxSummary, now: Timestamp) -> String {
        var line = "Notices: \(summary.pending) waiting to be delivered"
        if summary.failing > 0 { line += ", \(summary.failing) of them after failed attempts (the controller's log says why)" }
        if let oldest = summary.oldestPendingSince { line += "; the oldest queued \(oldest.minuteText)" }
        return line + "."
    }

    /// With `authority.db` gone, no builtin credential can be verified any more: say so on every builtin token rather than
    /// "ok". Which issuers are builtin is in the manifests, read only in this rare case; without them (`--state-dir`
    /// alone), the form of the recorded credential ids tells.
    static func flagLostAuthority(_ rows: [TokenStatus.Row], state: RecordedState, paths: [String], directory: String) -> [TokenStatus.Row] {
        let path = (directory as NSString).appendingPathComponent(BuiltinAuthority.fileName)
        guard !rows.isEmpty, !FileManager.default.fileExists(atPath: path) else { return rows }
        let isBuiltin: (TokenStatus.Row) -> Bool
        if paths.isEmpty {
            isBuiltin = { row in
                state.tokens[row.token]?.versions.contains { $0.status != .revoked && BuiltinAuthority.isCredentialID($0.credentialID) } ?? false
            }
        } else {
            let loaded = ManifestLoader(registry: .standard).load(paths: paths, now: Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)))
            let builtin = Set(loaded.manifests.issuers.values.filter { $0.driver.settings(as: BuiltinIssuerSettings.self) != nil }.map(\.metadata.name))
            isBuiltin = { builtin.contains($0.issuer) }
        }
        return rows.map { row in
            guard isBuiltin(row) else { return row }
            var row = row
            row.health = .needsAttention
            row.note = "the builtin issuer's database \(path) is missing, so this credential can no longer be verified; restore it from "
                + "a backup, or run apply --refresh to issue new credentials"
            return row
        }
    }
}

/// `tokenctl forecast`: what will rotate, retire or expire, and when.
struct ForecastCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "List what will be rotated, retired or will expire within a period, and when."
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(help: "How far ahead to look, e.g. 30d.")
    var within: String = "30d"

    @Flag(help: "Print as JSON (format version 1).")
    var json = false

    @Option(help: "Start the forecast at this time instead of now.")
    var at: String?

    func run() async throws {
        let now = try ClockOption.moment(at)
        guard let horizon = try? TokenDuration(parsing: within) else {
            throw ValidationError("Invalid --within '\(within)': write a duration such as 7d or 30d.")
        }
        let desired = manifests.paths.isEmpty ? nil : try loadManifestsOrExit(manifests.paths, now: now, quiet: true).manifests
        try requireState(manifests, holding: "no token is managed yet (tokenctl apply creates it)")
        let store = try openState(manifests.stateDirectory, mode: .readOnly, url: manifests.stateURL)
        let state = try await withState { () async throws(StateError) in try await store.load() }
        let events = Forecast.events(desired: desired, recorded: state, now: now, within: horizon)
        if json {
            print(try PlanJSON.encode(ForecastReport(from: now, within: horizon, events: events)))
        } else {
            print(Forecast.text(events, within: horizon), terminator: "")
        }
    }
}

/// `tokenctl show PLANFILE`: a saved plan, and whether it still applies.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a plan saved with plan --out, and whether it is stale.",
        discussion: "Exit codes: 0 the plan still applies, 1 it is stale, unreadable or made from other manifests."
    )

    @Argument(help: "The plan file.")
    var planFile: String

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() async throws {
        let saved = try orExit { () throws(SavedPlanFile.Failure) in try SavedPlanFile.read(planFile) }
        if json {
            print(try PlanJSON.encode(saved.plan))
        } else {
            print(PlanRenderer.human(saved.plan, colors: useColors(fileDescriptor: 1)), terminator: "")
        }
        let files = ManifestFilesList.files(saved.manifestPaths)
        let digest = try manifestsDigest(files)
        let store = try openState(saved.stateDirectory, mode: .readOnly, url: StateBackend.url(explicit: nil))
        let serial = try await withState { () async throws(StateError) in try await store.serial() }
        if let staleness = saved.staleness(currentSerial: serial, currentDigest: digest, now: ClockOption.now()) {
            printError("tokenctl: error: \(saved.message(staleness))")
            throw ExitCode(1)
        }
        printError("The plan still applies: state serial \(serial), manifests unchanged.")
    }
}

/// The manifest files under some paths (the same discovery as validate, without decoding).
enum ManifestFilesList {
    static func files(_ paths: [String]) -> [String] {
        ManifestLoader(registry: .standard).discover(paths: paths)
    }
}
