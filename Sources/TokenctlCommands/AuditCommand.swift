import ArgumentParser
import Foundation
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlState

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
                if let interrupted = MasterKey.interruptedRotation(stateDirectory: directory) { printError("note: \(interrupted)") }
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
