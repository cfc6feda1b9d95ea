import Foundation
import Testing
import TokenctlEngine
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// The audit log records every request and change and detects tampering; issued secrets never reach any output.
@Suite struct AuditAndCanaryTests {
    static func sqlite(_ database: String, _ statement: String) throws -> BinaryRunner.Outcome {
        try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", database, statement])
    }

    @Test func auditRecordsRequestsAndChangesAndDetectsTampering() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let apply = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--reason", "SEC-9 first issue"],
                                      environment: ["TOKENCTL_ACTOR": "alice"])
        #expect(apply.status == 0)
        #expect(try workspace.run(["plan", "-f", "DIR", "--out", workspace.root + "/plan.json"]).status == 0)
        let log = try workspace.run(["audit", "-f", "DIR"])
        let lines = log.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(log.stdout)")
        #expect(lines.first?.contains("alice@") == true && lines.first?.contains("request apply") == true)
        #expect(lines.first?.contains("reason: SEC-9 first issue") == true)
        #expect(lines.dropFirst().first?.contains("change apply issue apps/web NotIssued → ok") == true)
        #expect(lines.last?.contains("request plan --out") == true)
        let json = try workspace.run(["audit", "-f", "DIR", "--json"]).stdout.split(separator: "\n")
        let change = try #require(try JSONSerialization.jsonObject(with: Data(json[1].utf8)) as? [String: Any])
        let entry = try #require(change["entry"] as? [String: Any])
        #expect((entry["fingerprints"] as? [String])?.first?.hasPrefix("sha256:") == true)
        #expect(try workspace.run(["audit", "-f", "DIR", "--verify"]).status == 0)

        let database = workspace.state + "/state.db"
        #expect(try Self.sqlite(database, "PRAGMA wal_checkpoint(TRUNCATE);").status == 0)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: database))
        for (tampering, statement, message) in [
            ("edited", "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE sequence = 1", "entry 1 was edited"),
            ("removed", "DELETE FROM audit WHERE sequence = 2", "entries are missing or reordered"),
            ("reordered", "UPDATE audit SET sequence = 10 WHERE sequence = 1; UPDATE audit SET sequence = 1 WHERE sequence = 2; "
                + "UPDATE audit SET sequence = 2 WHERE sequence = 10", "does not chain"),
        ] {
            try pristine.write(to: URL(fileURLWithPath: database))
            try? FileManager.default.removeItem(atPath: database + "-wal")
            try? FileManager.default.removeItem(atPath: database + "-shm")
            #expect(try Self.sqlite(database, statement).status == 0)
            let verify = try workspace.run(["audit", "-f", "DIR", "--verify"])
            #expect(verify.status == 1, "\(tampering) entry not detected")
            #expect(verify.stderr.contains(message), "\(tampering): \(verify.stderr)")
        }
    }

    @Test func issuedSecretsNeverReachAnyOutputPlanStateOrAudit() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web") + ApplyCommandTests.token("api")))
        var outputs: [String] = []
        func run(_ arguments: [String]) throws {
            // Every command logs at debug level, so that the logs are searched too.
            let outcome = try workspace.run(arguments, environment: ["TOKENCTL_LOG_LEVEL": "debug"])
            outputs.append(outcome.stdout + outcome.stderr)
        }
        try run(["apply", "-f", "DIR", "--auto-approve", "--at", ApplyCommandTests.at(0)])
        var canaries = [try workspace.secret("web"), try workspace.secret("api")]
        try run(["apply", "-f", "DIR", "--auto-approve", "--at", ApplyCommandTests.at(5)])  // rotate
        canaries += [try workspace.secret("web"), try workspace.secret("api")]
        canaries.append(try String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        try run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(9), "--out", workspace.root + "/plan.json"])
        try run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(9), "--json", "--refresh"])
        try run(["show", workspace.root + "/plan.json"])
        try run(["apply", workspace.root + "/plan.json", "--at", ApplyCommandTests.at(9)])
        try run(["status", "-f", "DIR", "--json"])
        try run(["status", "-f", "DIR"])
        try run(["forecast", "-f", "DIR", "--within", "1d"])
        try run(["audit", "-f", "DIR", "--json"])
        try run(["audit", "-f", "DIR"])
        try run(["validate", "-f", "DIR"])
        for path in ["plan.json", ".tokenctl/state.db", ".tokenctl/state.db-wal", ".tokenctl/authority.db", ".tokenctl/authority.db-wal"] {
            if let data = FileManager.default.contents(atPath: workspace.root + "/" + path) {
                outputs.append(String(decoding: data, as: UTF8.self))
            }
        }
        #expect(canaries.count == 5 && canaries.allSatisfy { $0.count > 40 })
        #expect(outputs.contains { $0.contains(" debug tokenctl.apply: ") && $0.contains("secret=(sensitive)") },
                "the debug logs this test searches must exist")
        #expect(Set(canaries).count == 5, "rotation must have issued new secrets")
        // Compare outside #expect, so that a failure never prints the secret.
        for (index, canary) in canaries.enumerated() {
            let leaks = outputs.filter { $0.contains(canary) }.count
            #expect(leaks == 0, "canary \(index) found in \(leaks) outputs or files")
        }
        // The encrypted store holds them, but not in plaintext.
        let vault = String(decoding: try Data(contentsOf: URL(fileURLWithPath: workspace.root + "/secrets.vault")), as: UTF8.self)
        #expect(!canaries.contains { vault.contains($0) })
    }
}
