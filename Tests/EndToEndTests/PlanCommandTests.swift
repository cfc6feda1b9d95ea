import Foundation
import Testing
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// `tokenctl plan`, `show`, `status` and `forecast` on manifests and a recorded state built for each test.
@Suite struct PlanCommandTests {
    static let now = "2026-11-30T12:00:00Z"
    static let nowStamp = Timestamp(secondsSinceEpoch: 1_796_040_000)

    static let manifests = """
        apiVersion: tokenctl/v1
        kind: Issuer
        metadata: {name: local}
        spec: {type: builtin}
        ---
        apiVersion: tokenctl/v1
        kind: Store
        metadata: {name: vault}
        spec: {type: encrypted-file, encryptedFile: {path: secrets.vault, key: env:TOKENCTL_MASTER_KEY}}
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: orders-api-ci, namespace: payments, owner: team-payments}
        spec:
          issuer: local
          scopes: [orders:read]
          lifespan: 90d
          rotation: {every: 30d, overlap: 24h}
          deliverTo: [{store: vault, key: payments/orders-api-ci}]
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: reporting-reader, namespace: payments, owner: team-payments}
        spec:
          issuer: local
          scopes: [reports:read]
          lifespan: 90d
          rotation: {every: 30d, overlap: 1h}
          deliverTo: [{store: vault, key: payments/reporting-reader}]

        """

    static func days(_ count: Int64) -> TokenDuration { TokenDuration(seconds: count * 86_400) }

    static func version(_ number: Int, issuedDaysAgo: Int64, status: CredentialStatus, key: String, retireAfter: Timestamp? = nil,
                        scopes: [String]) -> CredentialVersion {
        let issued = Timestamp(secondsSinceEpoch: nowStamp.secondsSinceEpoch - issuedDaysAgo * 86_400)
        return CredentialVersion(version: number, credentialID: "tk-\(key.replacingOccurrences(of: "/", with: "-"))-\(number)",
                                 fingerprint: "sha256:x\(number)", scopes: scopes, issuedAt: issued, expiresAt: issued + days(90),
                                 status: status, retireAfter: retireAfter,
                                 deliveries: [DeliveryRecord(store: "vault", key: key, contentFingerprint: "fp\(number)", deliveredAt: issued)])
    }

    /// orders-api-ci: v1 issued 31 days ago (rotation due). reporting-reader: v3 retiring (overlap over), v4 active and fresh.
    /// legacy: recorded but no longer in the manifests.
    static func recordedTokens() -> [RecordedToken] {
        [
            RecordedToken(id: TokenID(namespace: "payments", name: "orders-api-ci"), issuer: "local", owner: "team-payments",
                          lifespan: .finite(days(90)), rotationEvery: days(30), overlap: days(1),
                          versions: [version(1, issuedDaysAgo: 31, status: .active, key: "payments/orders-api-ci", scopes: ["orders:read"])]),
            RecordedToken(id: TokenID(namespace: "payments", name: "reporting-reader"), issuer: "local", owner: "team-payments",
                          lifespan: .finite(days(90)), rotationEvery: days(30), overlap: TokenDuration(seconds: 3_600),
                          versions: [
                            version(3, issuedDaysAgo: 32, status: .retiring, key: "payments/reporting-reader",
                                    retireAfter: Timestamp(secondsSinceEpoch: nowStamp.secondsSinceEpoch - 7_200), scopes: ["reports:read"]),
                            version(4, issuedDaysAgo: 2, status: .active, key: "payments/reporting-reader", scopes: ["reports:read"]),
                          ]),
            RecordedToken(id: TokenID(namespace: "payments", name: "legacy"), issuer: "local", owner: "team-payments",
                          lifespan: .finite(days(90)), rotationEvery: days(30),
                          versions: [version(2, issuedDaysAgo: 5, status: .active, key: "payments/legacy", scopes: ["orders:read"])]),
        ]
    }

    struct Workspace {
        let root: String
        var manifests: String { root + "/manifests" }
        var state: String { root + "/manifests/.tokenctl" }
    }

    static func workspace(recorded: [RecordedToken] = recordedTokens()) async throws -> Workspace {
        let workspace = Workspace(root: BinaryRunner.temporaryDirectory())
        BinaryRunner.write(manifests, to: workspace.manifests + "/tokens.yaml")
        if !recorded.isEmpty {
            let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
            _ = try await store.write(recorded.map { .upsert($0) }, expectedSerial: 0)
            // The builtin issuer's database exists wherever builtin tokens were applied (status flags its absence).
            _ = try BuiltinAuthority(directory: workspace.state, mode: .readWrite)
        }
        return workspace
    }

    @Test func planShowsEachChangeWithItsReason() async throws {
        let workspace = try await Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout == """
            Planned for 2026-11-30 12:00 UTC at state serial 1:
              - retire    payments/legacy v2               local
                          RemovedFromManifests: no longer in the manifests; revoke and remove from every store
              ~ rotate    payments/orders-api-ci v1 → v2   local        expires in 90d
                          RotationDue: age 31d ≥ every 30d
              - retire    payments/reporting-reader v3     local
                          OverlapEnded: successor v4 active since 2026-11-28 12:00 UTC

            Plan: 1 to rotate, 2 to retire.

            """)
        #expect(try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now, "--detailed-exitcode"]).status == 2)
    }

    @Test func nothingToDoIsANoOpPlan() async throws {
        var tokens = Self.recordedTokens()
        tokens[0].versions[0] = Self.version(1, issuedDaysAgo: 3, status: .active, key: "payments/orders-api-ci", scopes: ["orders:read"])
        tokens[1].versions.removeFirst()
        tokens.removeLast()
        let workspace = try await Self.workspace(recorded: tokens)
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now, "--detailed-exitcode"])
        #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)")
        #expect(outcome.stdout == "No changes. Issued credentials match the manifests.\n")
    }

    @Test func planWithoutStateIssuesEverythingAndWritesNothing() async throws {
        let workspace = try await Self.workspace(recorded: [])
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--json"])
        #expect(outcome.status == 0)
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(plan["formatVersion"] as? Int == 1)
        #expect(plan["stateSerial"] as? Int == 0)
        let changes = try #require(plan["changes"] as? [[String: Any]])
        #expect(changes.map { $0["action"] as? String } == ["issue", "issue"])
        #expect(changes.map { $0["token"] as? String } == ["payments/orders-api-ci", "payments/reporting-reader"])
        #expect(changes.map { $0["reason"] as? String } == ["NotIssued", "NotIssued"])
        #expect(!FileManager.default.fileExists(atPath: workspace.state), "a plan must not create state")
    }

    @Test func savedPlansAreRefusedWhenStale() async throws {
        let workspace = try await Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let planFile = workspace.root + "/plan.json"
        #expect(try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now, "--out", planFile]).status == 0)
        let fresh = try BinaryRunner.run(["show", planFile])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(fresh.stdout.contains("RotationDue: age 31d ≥ every 30d"))
        #expect(fresh.stderr.contains("still applies"))

        // Another manifest set: refused.
        let tokens = workspace.manifests + "/tokens.yaml"
        let original = try String(contentsOfFile: tokens, encoding: .utf8)
        BinaryRunner.write(original.replacingOccurrences(of: "overlap: 1h", with: "overlap: 2h"), to: tokens)
        let edited = try BinaryRunner.run(["show", planFile])
        #expect(edited.status == 1)
        #expect(edited.stderr.contains("made from other manifests"))
        BinaryRunner.write(original, to: tokens)

        // A state written since: refused.
        let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
        _ = try await store.write([], expectedSerial: 1)
        let stale = try BinaryRunner.run(["show", planFile])
        #expect(stale.status == 1)
        #expect(stale.stderr.contains("the saved plan is stale: it was made at state serial 1, the state is now at 2"))

        // Truncated: refused with a clear message.
        let data = try Data(contentsOf: URL(fileURLWithPath: planFile))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: planFile))
        let truncated = try BinaryRunner.run(["show", planFile])
        #expect(truncated.status == 1)
        #expect(truncated.stderr.contains("is not a complete tokenctl plan"))
    }

    @Test func damagedOrNewerStateIsAClearErrorAndNothingIsWritten() async throws {
        let workspace = try await Self.workspace(recorded: [])
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        try FileManager.default.createDirectory(atPath: workspace.state, withIntermediateDirectories: true)
        let garbage = Data("this is not sqlite".utf8) + Data(repeating: 7, count: 5000)
        try garbage.write(to: URL(fileURLWithPath: workspace.state + "/state.db"))
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests])
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("\(workspace.state)/state.db"))
        #expect(outcome.stderr.contains("restore it from a backup"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.state + "/state.db")) == garbage)
        #expect(try BinaryRunner.run(["status", "--state-dir", workspace.state]).status == 1)

        // A state written by a newer tokenctl (a migration this build does not know).
        try FileManager.default.removeItem(atPath: workspace.state + "/state.db")
        let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
        _ = try await store.write([], expectedSerial: 0)
        let python = try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO grdb_migrations VALUES ('v9-future')\"); c.commit()",
            workspace.state + "/state.db"])
        #expect(python.status == 0, "\(python.stderr)")
        let newer = try BinaryRunner.run(["plan", "-f", workspace.manifests])
        #expect(newer.status == 1)
        #expect(newer.stderr.contains("was written by a newer tokenctl (unknown migrations: v9-future); upgrade tokenctl"))
    }

    @Test func aLockedStateCanStillBePlanned() async throws {
        let workspace = try await Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
        _ = try await store.acquireLock(LockRequest(holder: "alice", host: "ops-laptop", processID: 4242, ttl: Self.days(1)), now: Self.nowStamp)
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now])
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains("the state is locked by alice on ops-laptop (pid 4242)"))
        #expect(outcome.stdout.contains("Plan: 1 to rotate, 2 to retire."))
    }

    @Test func refreshFindsGhostsAtTheBuiltinIssuer() async throws {
        let workspace = try await Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let authority = try BuiltinAuthority(directory: workspace.state, mode: .readWrite)
        // The recorded credentials exist at the issuer; one more was issued outside tokenctl.
        for token in Self.recordedTokens() {
            for version in token.versions {
                _ = try authority.issue(IssueRequest(issuer: "local", owner: token.owner, subject: token.id.description,
                                                     scopes: version.scopes, expiresAt: version.expiresAt, idempotencyKey: nil), now: Self.nowStamp)
            }
        }
        let ghost = try authority.issue(IssueRequest(issuer: "local", owner: "someone", subject: "by hand",
                                                     scopes: ["admin"], expiresAt: nil, idempotencyKey: nil), now: Self.nowStamp)
        let without = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now])
        #expect(!without.stdout.contains("ghost"), "without --refresh no issuer is asked")
        let refreshed = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", Self.now, "--refresh"])
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        #expect(refreshed.stdout.contains("! ghost     \(ghost.hint) (id \(ghost.credentialID))"), "the issuer is named once")
        #expect(refreshed.stdout.contains("Unmanaged: valid at the issuer but not recorded in this state"))
        // Recorded credentials are not at the issuer under their recorded ids: planned as missing.
        #expect(refreshed.stdout.contains("MissingAtIssuer"))
        let secretLeaks = ghost.secret.map { secret in secret.withRevealed { refreshed.stdout.contains($0) || refreshed.stderr.contains($0) } } ?? false
        #expect(!secretLeaks)
    }

    @Test func statusAndForecast() async throws {
        let workspace = try await Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let status = try BinaryRunner.run(["status", "-f", workspace.manifests, "--at", Self.now])
        #expect(status.status == 0, "\(status.stderr)")
        let lines = status.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("TOKEN") == true)
        #expect(lines.contains { $0.hasPrefix("payments/orders-api-ci") && $0.contains("v1") && $0.contains("31d") && $0.hasSuffix("rotation due (due)") })
        #expect(lines.contains { $0.hasPrefix("payments/reporting-reader") && $0.contains("v4") && $0.hasSuffix("ok") })
        #expect(status.stdout.contains("3 tokens: 2 ok, 1 rotation due."))
        let json = try BinaryRunner.run(["status", "-f", workspace.manifests, "--at", Self.now, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((report["tokens"] as? [[String: Any]])?.count == 3)

        let forecast = try BinaryRunner.run(["forecast", "-f", workspace.manifests, "--at", Self.now, "--within", "30d"])
        #expect(forecast.status == 0, "\(forecast.stderr)")
        #expect(forecast.stdout.contains("rotate  payments/orders-api-ci"))
        #expect(forecast.stdout.contains("retire  payments/legacy"))
        #expect(forecast.stdout.contains("rotate  payments/reporting-reader") && forecast.stdout.contains("v4 → v5"))
    }
}

/// `plan --format markdown` (for pull-request comments) and `reconcile` (one unattended pass).
@Suite struct MarkdownAndReconcileTests {
    @Test func markdownPlan() async throws {
        let workspace = try await PlanCommandTests.workspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let outcome = try BinaryRunner.run(["plan", "-f", workspace.manifests, "--at", PlanCommandTests.now, "--format", "markdown"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout == """
            ### tokenctl plan

            **Plan: 1 to rotate, 2 to retire.**

            | | Action | Token | Issuer | Reason |
            |---|---|---|---|---|
            | - | retire | `payments/legacy v2` | local | `RemovedFromManifests`: no longer in the manifests; revoke and remove from every store |
            | ~ | rotate | `payments/orders-api-ci v1 → v2` | local | `RotationDue`: age 31d ≥ every 30d |
            | - | retire | `payments/reporting-reader v3` | local | `OverlapEnded`: successor v4 active since 2026-11-28 12:00 UTC |

            <sub>State serial 1, planned for 2026-11-30T12:00:00Z.</sub>

            """)
    }

    @Test func reconcileRunsOnePassWithoutQuestions() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let first = try workspace.run(["reconcile", "-f", "DIR", "--reason", "nightly"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("Apply complete: 1 change applied, 0 failed."))
        let second = try workspace.run(["reconcile", "-f", "DIR"])
        #expect(second.status == 0)
        #expect(second.stdout == "No changes. Issued credentials match the manifests.\n")
        #expect(try workspace.run(["audit", "-f", "DIR"]).stdout.contains("reason: nightly"))
    }
}
