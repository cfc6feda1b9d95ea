import ArgumentParser
import Foundation
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlSQLite
import TokenctlState

/// Where a request comes from: actor, host, and the git commit of the manifests.
struct RequestOrigin: Sendable {
    var requestID: String
    var actor: String
    var host: String
    var gitCommit: String?
    var gitDirty: Bool?

    static func current(manifestPaths: [String]) -> RequestOrigin {
        var generator = SystemRandomNumberGenerator()
        let directory = manifestPaths.first.map { path -> String in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            return isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        } ?? "."
        let commit = git(["rev-parse", "HEAD"], in: directory)
        let dirty = commit == nil ? nil : !(git(["status", "--porcelain", "--", "."], in: directory) ?? "").isEmpty
        return RequestOrigin(requestID: String(generator.next() as UInt64, radix: 16), actor: RequestActor.name,
                             host: ProcessInfo.processInfo.hostName, gitCommit: commit, gitDirty: dirty)
    }

    /// Runs git quietly; nil when git is missing or the directory is not in a repository.
    private static func git(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory.isEmpty ? "." : directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func entry(_ command: String, at: Timestamp, kind: String = "request", reason: String? = nil, detail: String? = nil) -> AuditEntry {
        AuditEntry(at: at, kind: kind, requestID: requestID, actor: actor, host: host, command: command, gitCommit: gitCommit,
                   gitDirty: gitDirty, reason: reason, detail: detail)
    }
}

/// `tokenctl audit`: the audit log, and a check of its hash chain.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log; --verify checks its hash chain.",
        discussion: "Exit codes: 0, or 1 when --verify finds an edited, removed or reordered entry."
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Print the entries as JSON lines (one entry per line, with sequence and hash).")
    var json = false

    @Flag(help: "Check the hash chain.")
    var verify = false

    func run() async throws {
        let directory = manifests.stateDirectory
        try requireState(manifests, holding: "no audit log to show")
        let store = try openState(directory, mode: .readOnly, url: manifests.stateURL)
        // The anchor before the records: an apply appending meanwhile then adds entries past the anchor, which is fine,
        // rather than moving the anchor past the entries read, which would look like entries removed.
        let serial = verify ? try await withState { () async throws(StateError) in try await store.serial() } : 0
        let anchor = verify ? try await withState { () async throws(StateError) in try await store.auditAnchor() } : nil
        let records = try await withState { () async throws(StateError) in try await store.auditRecords() }
        if verify {
            let result = AuditLog.verify(records, anchor: anchor, key: AuditKey.current(stateDirectory: directory), stateSerial: serial)
            if let problem = result.problem {
                printError("tokenctl: error: audit log: \(problem)")
                throw ExitCode(1)
            }
            var summary = "Audit log intact: \(records.count) entr\(records.count == 1 ? "y" : "ies")"
            summary += result.authenticated > 0 ? ", \(result.authenticated) authenticated with the master key and anchored" : ", hash chain verified"
            if result.unauthenticated > 0 && result.authenticated > 0 {
                summary += "; the first \(result.unauthenticated) predate authentication and are only hash-chained"
            }
            print(summary + ".")
            return
        }
        for record in records {
            if json {
                print("{\"sequence\":\(record.sequence),\"hash\":\"\(record.hash)\",\"entry\":\(record.json)}")
                continue
            }
            guard let entry = AuditLog.entry(record) else {
                print("#\(record.sequence) (unreadable entry)")
                continue
            }
            var line = "#\(record.sequence) \(entry.at) \(entry.actor)@\(entry.host) \(entry.kind) \(entry.command)"
            if let token = entry.token { line += " \(entry.action ?? "") \(token) \(entry.changeReason ?? "")" }
            if let result = entry.result { line += " → \(result)" }
            if entry.kind == "request" {
                if let commit = entry.gitCommit { line += " git \(commit.prefix(12))\(entry.gitDirty == true ? " (dirty)" : "")" }
                if let reason = entry.reason { line += " reason: \(reason)" }
                if let detail = entry.detail { line += " — \(detail)" }
            } else if entry.token == nil, let detail = entry.detail {
                line += " — \(detail)"
            }
            print(line)
        }
    }
}

/// Recording requests and changes in the audit log.
enum Auditing {
    /// The engine's auditor for one run: change and repair entries carry this request's origin and `command`.
    static func auditor(_ store: StateBackend.Store, key: Data?, origin: RequestOrigin, command: String, desired: ManifestSet,
                        at now: Timestamp) -> ChangeAuditor {
        let tokens = Dictionary(desired.tokens.map { ($0.id, $0.metadata.annotations) }, uniquingKeysWith: { first, _ in first })
        return ChangeAuditor(store: store, key: key,
                             entry: { change, failure, versions in
                                 entry(change, failure: failure, versions: versions, annotations: change.token.flatMap { tokens[$0] },
                                       origin: origin, command: command, at: now)
                             },
                             repairEntry: { origin.entry(command, at: now, kind: "repair", detail: $0) })
    }

    static func entry(_ change: PlannedChange, failure: String?, versions: [CredentialVersion], annotations: [String: String]?,
                      origin: RequestOrigin, command: String, at now: Timestamp) -> AuditEntry {
        var entry = origin.entry(command, at: now, kind: "change")
        entry.token = change.token
        entry.action = change.action.rawValue
        entry.changeReason = change.reason.rawValue
        entry.detail = change.ghost.map { "ghost \($0.credentialID) at \(change.issuer)" } ?? change.detail
        entry.annotations = annotations
        entry.fingerprints = versions.filter { $0.version == change.version || $0.version == change.newVersion }
            .map(\.fingerprint).filter { !$0.isEmpty }
        entry.result = failure ?? "ok"
        return entry
    }
}
