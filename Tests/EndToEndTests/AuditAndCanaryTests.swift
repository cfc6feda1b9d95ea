import Foundation
import Testing
import TokenctlEngine
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// The audit log records every request and change and detects tampering; issued secrets never reach any output.
@Suite struct AuditAndCanaryTests {
    /// Runs SQL on a database with Python's sqlite3, then a Python script with the connection as `c`.
    static func sqlite(_ database: String, _ statement: String, then script: String = "") throws -> BinaryRunner.Outcome {
        try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2])\n" + script + "c.commit()", database, statement])
    }

    @Test func auditRecordsRequestsAndChangesAndDetectsTampering() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let apply = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--reason", "SEC-9 first issue"],
                                      environment: ["TOKENCTL_ACTOR": "alice"])
        #expect(apply.status == 0)
        #expect(try workspace.run(["plan", "-f", "DIR", "--out", workspace.root + "/plan.json"]).status == 0, "a plan writes no audit entry")
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: ["TOKENCTL_ACTOR": "bob"]).status == 0)
        let log = try workspace.run(["audit", "-f", "DIR"])
        let lines = log.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(log.stdout)")
        #expect(lines.first?.contains("alice@") == true && lines.first?.contains("request apply") == true)
        #expect(lines.first?.contains("reason: SEC-9 first issue") == true)
        #expect(lines.dropFirst().first?.contains("change apply issue apps/web NotIssued → ok") == true)
        #expect(lines.last?.contains("bob@") == true && lines.last?.contains("request apply") == true)
        let json = try workspace.run(["audit", "-f", "DIR", "--json"]).stdout.split(separator: "\n")
        let change = try #require(try JSONSerialization.jsonObject(with: Data(json[1].utf8)) as? [String: Any])
        let entry = try #require(change["entry"] as? [String: Any])
        #expect((entry["fingerprints"] as? [String])?.first?.hasPrefix("sha256:") == true)
        #expect(try workspace.run(["audit", "-f", "DIR", "--verify"]).status == 0)

        let database = workspace.state + "/state.db"
        #expect(try Self.sqlite(database, "PRAGMA wal_checkpoint(TRUNCATE);").status == 0)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: database))
        // Someone with write access to the database but not the master key: every kind of rewrite is caught, and the
        // message names the first bad or missing entry.
        let rehash = "import hashlib; rows = c.execute('SELECT sequence, entry FROM audit ORDER BY sequence').fetchall(); p = ''\n"
            + "for s, e in rows:\n    h = 'sha256:' + hashlib.sha256((p + '\\n' + e).encode()).hexdigest()\n"
            + "    c.execute('UPDATE audit SET previous_hash = ?, hash = ? WHERE sequence = ?', (p, h, s)); p = h\n"
        for (tampering, statement, script, message) in [
            ("edited", "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE sequence = 1", "", "entry #1 was edited or forged"),
            ("removed", "DELETE FROM audit WHERE sequence = 2", "", "entry #2 is missing"),
            ("reordered", "UPDATE audit SET sequence = 10 WHERE sequence = 1; UPDATE audit SET sequence = 1 WHERE sequence = 2; "
                + "UPDATE audit SET sequence = 2 WHERE sequence = 10", "", "entry #1 does not chain"),
            ("emptied", "DELETE FROM audit", "", "the log ends at #0 but its anchor records #3"),
            ("newest dropped", "DELETE FROM audit WHERE sequence = 3", "", "entry #3 is missing: the log ends at #2"),
            ("edited and rehashed", "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE sequence = 2", rehash,
             "none of the log's 3 entries is authenticated"),
            ("newest rewritten", "UPDATE audit SET entry = replace(entry, 'bob', 'eve') WHERE sequence = 3", "",
             "entry #3 was edited or forged"),
            ("rehashed, anchor dropped", "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE sequence = 1; "
                + "DELETE FROM meta WHERE key = 'audit_anchor'", rehash, "none of the log's 3 entries is authenticated"),
            ("emptied, anchor dropped", "DELETE FROM audit; DELETE FROM meta WHERE key = 'audit_anchor'", "",
             "the log is empty although the state has a history"),
        ] {
            try pristine.write(to: URL(fileURLWithPath: database))
            try? FileManager.default.removeItem(atPath: database + "-wal")
            try? FileManager.default.removeItem(atPath: database + "-shm")
            #expect(try Self.sqlite(database, statement, then: script).status == 0)
            let verify = try workspace.run(["audit", "-f", "DIR", "--verify"])
            #expect(verify.status == 1, "\(tampering) entry not detected")
            #expect(verify.stderr.contains(message), "\(tampering): \(verify.stderr)")
        }
        try pristine.write(to: URL(fileURLWithPath: database))
        let intact = try workspace.run(["audit", "-f", "DIR", "--verify"])
        #expect(intact.status == 0 && intact.stdout.contains("3 authenticated with the master key and anchored"), "\(intact.stdout)\(intact.stderr)")

        // Without state there is nothing to vouch for: an error, not "intact: 0 entries".
        let elsewhere = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        let missing = try BinaryRunner.run(["audit", "--state-dir", elsewhere + "/.tokenctl", "--verify"])
        #expect(missing.status == 1 && missing.stderr.contains("there is no state"), "\(missing.stdout)\(missing.stderr)")
    }

    /// Killed right after the state write that activates a batch, the audit log already holds every change of it:
    /// each change's entry is written in the same transaction as its state transition.
    @Test func aCrashLeavesNoChangeUnaudited() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let names = (1...20).map { "svc-\($0)" }
        workspace.write(ApplyCommandTests.manifests(tokens: names.map { ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d") }.joined()))
        let killed = try workspace.run(at: ApplyCommandTests.at(0), ["apply", "-f", "DIR", "--auto-approve"],
                                       environment: ["TOKENCTL_FAULT": "after-record"])
        #expect(killed.signal == SIGKILL, "the fault point was reached")
        let active = try await workspace.recorded().tokens.values.filter { $0.active != nil }.count
        #expect(active == 20)
        let changes = try workspace.run(["audit", "-f", "DIR"]).stdout.split(separator: "\n").filter { $0.contains(" change apply issue ") }
        #expect(changes.count == active, "\(changes.count) change entries for \(active) activated tokens")
        #expect(try workspace.run(["audit", "-f", "DIR", "--verify"]).status == 0)

        // Retirement after a crash between revocation and its record: neither state nor audit shows it, and the next
        // apply records both together.
        workspace.write(ApplyCommandTests.manifests(tokens: names.dropLast(2).map {
            ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d")
        }.joined()))
        let interrupted = try workspace.run(at: ApplyCommandTests.at(10), ["apply", "-f", "DIR", "--auto-approve"],
                                            environment: ["TOKENCTL_FAULT": "after-revoke"])
        #expect(interrupted.signal == SIGKILL)
        func retireEntries() throws -> Int {
            try workspace.run(["audit", "-f", "DIR"]).stdout.split(separator: "\n").filter { $0.contains(" change apply retire ") }.count
        }
        #expect(try await workspace.recorded().tokens.count == 20 && retireEntries() == 0)
        #expect(try workspace.apply(at: 20).status == 0)
        #expect(try await workspace.recorded().tokens.count == 18 && retireEntries() == 2)
        #expect(try workspace.run(["audit", "-f", "DIR", "--verify"]).status == 0)
    }

    @Test func issuedSecretsNeverReachAnyOutputPlanStateOrAudit() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web") + ApplyCommandTests.token("api")))
        var outputs: [String] = []
        func run(at moment: String? = nil, _ arguments: [String]) throws {
            // Every command logs at debug level, so that the logs are searched too.
            let debug = ["TOKENCTL_LOG_LEVEL": "debug"]
            let outcome = try moment.map { try workspace.run(at: $0, arguments, environment: debug) }
                ?? workspace.run(arguments, environment: debug)
            outputs.append(outcome.stdout + outcome.stderr)
        }
        try run(at: ApplyCommandTests.at(0), ["apply", "-f", "DIR", "--auto-approve"])
        var canaries = [try workspace.secret("web"), try workspace.secret("api")]
        try run(at: ApplyCommandTests.at(5), ["apply", "-f", "DIR", "--auto-approve"])  // rotate
        canaries += [try workspace.secret("web"), try workspace.secret("api")]
        canaries.append(try String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        try run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(9), "--out", workspace.root + "/plan.json"])
        try run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(9), "--json", "--refresh"])
        try run(["show", workspace.root + "/plan.json"])
        try run(at: ApplyCommandTests.at(9), ["apply", workspace.root + "/plan.json"])
        try run(["status", "-f", "DIR", "--json"])
        try run(["status", "-f", "DIR"])
        try run(["forecast", "-f", "DIR", "--within", "1d"])
        try run(["audit", "-f", "DIR", "--json"])
        try run(["audit", "-f", "DIR"])
        try run(["validate", "-f", "DIR"])
        try run(["rekey", "-f", "DIR", "--reason", "canary check"])
        canaries.append(try String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        try run(["audit", "-f", "DIR", "--json"])
        for path in ["plan.json", ".tokenctl/state.db", ".tokenctl/state.db-wal", ".tokenctl/authority.db", ".tokenctl/authority.db-wal"] {
            if let data = FileManager.default.contents(atPath: workspace.root + "/" + path) {
                outputs.append(String(decoding: data, as: UTF8.self))
            }
        }
        #expect(canaries.count == 6 && canaries.allSatisfy { $0.count > 40 })
        #expect(outputs.contains { $0.contains(" debug tokenctl.apply: ") && $0.contains("secret=(sensitive)") },
                "the debug logs this test searches must exist")
        #expect(Set(canaries).count == 6, "rotation must have issued new secrets, and rekey a new key")
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

/// An allowance for a secret-like value is recorded in the audit log by every apply.
@Suite struct SecretAllowanceAuditTests {
    @Test func everyApplyRecordsTheAllowance() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ManifestText.header(dotenv: false) + """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: web, namespace: apps, owner: team-a, annotations: {tokenctl.io/allow-secret-like: deliverTo.key}}
            spec: {issuer: local, scopes: [orders:read], lifespan: 30d, deliverTo: [{store: vault, key: "apps/Zk3q9XbT2mLp8RwY4vN7cJ1hG6dS5aE0"}]}

            """)
        let applied = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stderr.contains("warning: 'deliverTo.key' looks like a secret"), "\(applied.stderr)")
        let audit = try workspace.run(["audit", "-f", "DIR"])
        #expect(audit.stdout.contains("secret-like values allowed by tokenctl.io/allow-secret-like at"), "\(audit.stdout)")
    }
}
