import Crypto
import Foundation
import Testing
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlSQLite
import TokenctlState
import TokenctlStores

/// `tokenctl apply` end to end: the quick start, rotation with overlap, retirement, ghosts, locks and bad keys.
@Suite struct ApplyCommandTests {
    static let t0 = Timestamp(secondsSinceEpoch: 1_796_040_000)  // 2026-11-30T12:00:00Z
    static func at(_ seconds: Int64) -> String { Timestamp(secondsSinceEpoch: t0.secondsSinceEpoch + seconds).description }

    static func manifests(tokens: String, ghosts: String = "report") -> String {
        ManifestText.header(ghosts: ghosts) + tokens
    }

    static func token(_ name: String, lifespan: String = "20s", every: String = "4s", overlap: String = "3s",
                      stores: [String] = ["vault", "envfile"]) -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: apps, owner: team-apps}
        spec:
          issuer: local
          scopes: [read]
          lifespan: \(lifespan)
          rotation: {every: \(every), overlap: \(overlap)}
          deliverTo: [\(stores.map { "{store: \($0), key: apps/\(name)}" }.joined(separator: ", "))]

        """
    }

    struct Workspace {
        let root = BinaryRunner.temporaryDirectory()
        var state: String { root + "/.tokenctl" }

        func write(_ text: String) { BinaryRunner.write(text, to: root + "/tokens.yaml") }

        func run(_ arguments: [String], environment: [String: String] = [:]) throws -> BinaryRunner.Outcome {
            try BinaryRunner.run(arguments.map { $0 == "DIR" ? root : $0 }, environment: environment)
        }

        /// Runs tokenctl with its clock at `moment` (see `BinaryRunner.run(at:)`).
        func run(at moment: String, _ arguments: [String], environment: [String: String] = [:]) throws -> BinaryRunner.Outcome {
            try BinaryRunner.run(at: moment, arguments.map { $0 == "DIR" ? root : $0 }, environment: environment)
        }

        func apply(at seconds: Int64, _ extra: [String] = []) throws -> BinaryRunner.Outcome {
            try run(at: ApplyCommandTests.at(seconds), ["apply", "-f", "DIR", "--auto-approve"] + extra)
        }

        /// The current secret of a token, read through `tokenctl secret get` into a file, never printed.
        func secret(_ name: String) throws -> String {
            try run(["secret", "get", "-f", "DIR", "apps/\(name)"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func verify(_ secret: String, at seconds: Int64) throws -> Int32 {
            let file = root + "/presented"
            BinaryRunner.write(secret + "\n", to: file)
            defer { unlink(file) }
            return try BinaryRunner.runProgram("/bin/sh", ["-c", "exec \"$0\" verify --state-dir \"$1\" --at \"$2\" < \"$3\"",
                                                           BinaryRunner.executable, state, ApplyCommandTests.at(seconds), file]).status
        }

        func inventory() throws -> [ObservedCredential] {
            try BuiltinAuthority(directory: state, mode: .readOnly).list(issuer: "local")
        }

        func recorded() async throws -> RecordedState {
            try await SQLiteStateStore(directory: state, mode: .readOnly).load()
        }

        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test func applyAndReconcileRefuseAShiftedClock() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "1h", every: "40m", overlap: "10m")))
        for command in ["apply", "reconcile"] {
            let refused = try workspace.run([command, "-f", "DIR", "--auto-approve", "--at", Self.at(31 * 86_400)]
                .filter { command == "apply" || $0 != "--auto-approve" })
            #expect(refused.status == 1, "\(command): \(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.contains("\(command) does not take --at: it issues and revokes real credentials"), "\(refused.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.state), "nothing was issued or recorded")
        #expect(!FileManager.default.fileExists(atPath: workspace.root + "/secrets.vault"))
        #expect(!(try workspace.run(["apply", "--help"]).stdout.contains("--at")), "apply's help does not offer --at")
    }

    @Test func quickstartAppliesAndSecondApplyChangesNothing() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        for file in ["tokens.yaml"] {
            let source = BinaryRunner.packageRoot.appendingPathComponent("Examples/quickstart/\(file)").path
            try FileManager.default.copyItem(atPath: source, toPath: workspace.root + "/" + file)
        }
        let first = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("Plan: 3 to issue."))
        #expect(first.stdout.contains("Apply complete: 3 changes applied, 0 failed."))
        #expect(first.stderr.contains("notice: created a master key"))
        let mode = try FileManager.default.attributesOfItem(atPath: workspace.state + "/master.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: workspace.root + "/secrets.vault")[.posixPermissions] as? Int) == 0o600)
        // SQLite's companions (state.db-wal, state.db-shm) too: every file tokenctl makes is private to its owner.
        let made = try FileManager.default.contentsOfDirectory(atPath: workspace.state)
        #expect(made.contains("state.db-wal") || made.contains("state.db-shm") || made.contains("state.db"))
        for file in made {
            let mode = try FileManager.default.attributesOfItem(atPath: workspace.state + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file) is \(String(mode ?? 0, radix: 8))")
        }
        let second = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(second.status == 0)
        #expect(second.stdout == "No changes. Issued credentials match the manifests.\n")
        let status = try workspace.run(["status", "-f", "DIR"])
        #expect(status.stdout.contains("3 tokens: 3 ok."))
        let secret = try workspace.run(["secret", "get", "-f", "DIR", "payments/orders-api-ci"]).stdout
        #expect(secret.hasPrefix("tkc_") && secret.count == 54)
        let pipe = try BinaryRunner.runProgram("/bin/sh", ["-c", "\"$0\" secret get -f \"$1\" payments/orders-api-ci | \"$0\" verify -f \"$1\"",
                                                          BinaryRunner.executable, workspace.root])
        #expect(pipe.status == 0)
        #expect(pipe.stdout.hasPrefix("valid: credential tk-"))
        #expect(!pipe.stdout.contains(secret.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    @Test func rotationWithOverlapThenRetirement() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("web")))
        #expect(try workspace.apply(at: 0).status == 0)
        let v1 = try workspace.secret("web")
        #expect(try workspace.verify(v1, at: 1) == 0)

        // 5s later rotation is due (every 4s): v2 is issued and delivered, v1 stays valid for the 3s overlap.
        let rotate = try workspace.apply(at: 5)
        #expect(rotate.status == 0, "\(rotate.stdout)\(rotate.stderr)")
        #expect(rotate.stdout.contains("~ rotate    apps/web v1 → v2"))
        let v2 = try workspace.secret("web")
        #expect(v2 != v1)
        #expect(try workspace.verify(v1, at: 6) == 0, "v1 must stay valid during the overlap")
        #expect(try workspace.verify(v2, at: 6) == 0)
        let during = try await workspace.recorded().tokens[TokenID(namespace: "apps", name: "web")]
        #expect(during?.versions.map(\.status) == [.retiring, .active])

        // When the overlap ends (5s + 3s), before v2 is due (5s + 4s): v1 is retired (revoked), v2 alone verifies.
        let retire = try workspace.apply(at: 8)
        #expect(retire.status == 0)
        #expect(retire.stdout.contains("- retire    apps/web v1"))
        #expect(retire.stdout.contains("OverlapEnded"))
        #expect(!retire.stdout.contains("rotate"))
        #expect(try workspace.verify(v1, at: 8) == 1)
        #expect(try workspace.verify(v2, at: 8) == 0)
        let dotenv = try String(contentsOfFile: workspace.root + "/app.env", encoding: .utf8)
        #expect(dotenv == "APPS_WEB=\(v2)\n")
        let after = try await workspace.recorded().tokens[TokenID(namespace: "apps", name: "web")]
        #expect(after?.versions.map(\.status) == [.revoked, .active])
        #expect(try workspace.inventory().filter { !$0.revoked }.count == 1)
    }

    @Test func removalRetiresAndRemovesEverywhere() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("keep", lifespan: "90d", every: "30d", overlap: "1d")
                                       + Self.token("drop", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        let dropped = try workspace.secret("drop")
        workspace.write(Self.manifests(tokens: Self.token("keep", lifespan: "90d", every: "30d", overlap: "1d")))
        let outcome = try workspace.apply(at: 60)
        #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)")
        #expect(outcome.stdout.contains("RemovedFromManifests"))
        #expect(try workspace.verify(dropped, at: 61) == 1)
        #expect(try await workspace.recorded().tokens.keys.map(\.name) == ["keep"])
        let dotenv = try String(contentsOfFile: workspace.root + "/app.env", encoding: .utf8)
        #expect(!dotenv.contains("APPS_DROP") && dotenv.contains("APPS_KEEP="))
        let key = try EncryptedFileStore.key(fromText: String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8), reference: "test")
        let vault = EncryptedFileStore(path: workspace.root + "/secrets.vault", key: key, keyReference: "test")
        #expect(try await vault.keys() == ["apps/keep"])
    }

    @Test func ghostsAreReportedThenRetired() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        let authority = try BuiltinAuthority(directory: workspace.state, mode: .readWrite)
        let ghost = try authority.issue(IssueRequest(issuer: "local", owner: "someone", subject: "by hand", scopes: ["admin"],
                                                     expiresAt: nil, idempotencyKey: nil), now: Self.t0)
        let ghostSecret = try #require(ghost.secret).withRevealed { $0 }
        let reported = try workspace.run(["plan", "-f", "DIR", "--refresh", "--at", Self.at(10)])
        #expect(reported.stdout.contains("! ghost     \(ghost.hint) (id \(ghost.credentialID))"))
        #expect(reported.stdout.contains("reported only (issuer ghosts: report)"))
        // A CI drift check sees reported ghosts: they count as changes for --detailed-exitcode.
        let drift = try workspace.run(["plan", "-f", "DIR", "--refresh", "--detailed-exitcode", "--at", Self.at(10)])
        #expect(drift.status == 2, "\(drift.stdout)\(drift.stderr)")
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d"), ghosts: "ignore"))
        let ignored = try workspace.run(["plan", "-f", "DIR", "--refresh", "--detailed-exitcode", "--at", Self.at(10)])
        #expect(ignored.status == 0 && !ignored.stdout.contains("ghost"), "ghosts: ignore lists none: \(ignored.stdout)\(ignored.stderr)")
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 10, ["--refresh"]).status == 0)
        #expect(try workspace.verify(ghostSecret, at: 11) == 0, "ghosts: report leaves it alone")

        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d"), ghosts: "retire"))
        let unrefreshed = try workspace.apply(at: 15)
        #expect(!unrefreshed.stdout.contains("ghost"), "without --refresh apply asks no issuer for its inventory")
        let retired = try workspace.apply(at: 20, ["--refresh"])
        #expect(retired.status == 0, "\(retired.stdout)\(retired.stderr)")
        #expect(retired.stdout.contains("will be revoked (issuer ghosts: retire)"))
        #expect(try workspace.verify(ghostSecret, at: 21) == 1)
    }

    @Test func aSecondApplyWaitsForTheLockThenFailsNamingTheHolder() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        _ = try await store.acquireLock(LockRequest(holder: "alice", host: "ops-laptop", processID: 4242, ttl: TokenDuration(seconds: 600)), now: now)
        let started = Date()
        let outcome = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--lock-timeout", "2s"])
        #expect(outcome.status == 1)
        #expect(Date().timeIntervalSince(started) >= 2)
        #expect(outcome.stderr.contains("the state is locked by alice on ops-laptop (pid 4242)"))
        #expect(try await workspace.recorded().tokens.isEmpty, "the second apply must not act")
        try await store.releaseLock(holder: "alice", processID: 4242)
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        #expect(try await store.currentLock(now: Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))) == nil,
                "apply releases its lock")
    }

    @Test func aWrongMasterKeyFailsClearlyAndLosesNothing() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: Self.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        let vaultBefore = try Data(contentsOf: URL(fileURLWithPath: workspace.root + "/secrets.vault"))
        let v1 = try workspace.secret("web")
        let wrongKey = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        let failed = try workspace.run(at: Self.at(40 * 86_400), ["apply", "-f", "DIR", "--auto-approve"],
                                       environment: ["TOKENCTL_MASTER_KEY": wrongKey])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("was sealed with another master key"), "refused before anything is issued: \(failed.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.root + "/secrets.vault")) == vaultBefore, "nothing overwritten")
        #expect(try workspace.inventory().filter { !$0.revoked }.count == 1, "nothing issued")
        #expect(try workspace.verify(v1, at: 40 * 86_400) == 0, "the credential stays valid")
        let retried = try workspace.apply(at: 40 * 86_400 + 1)
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        #expect(retried.stdout.contains("~ rotate    apps/web v1 → v2"), "\(retried.stdout)")
        #expect(try workspace.secret("web") != v1)
    }
}

/// More of apply: saved plans, exec, and one failing change not stopping the others.
@Suite struct ApplyMoreTests {
    /// A workspace with one long-lived token, `apps/web`, applied now.
    static func appliedWeb() throws -> ApplyCommandTests.Workspace {
        let workspace = ApplyCommandTests.Workspace()
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let applied = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        return workspace
    }

    @Test func appliesASavedPlanAndRefusesItOnceStale() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let planFile = workspace.root + "/plan.json"
        #expect(try workspace.run(["plan", "-f", "DIR", "--out", planFile]).status == 0)
        let applied = try workspace.run(["apply", planFile])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stdout.contains("Apply complete: 1 change applied, 0 failed."))
        let again = try workspace.run(["apply", planFile])
        #expect(again.status == 1)
        #expect(again.stderr.contains("the saved plan is stale"))
    }

    @Test func aPlanMadeForALaterMomentIsNotAppliedNow() throws {
        let workspace = try Self.appliedWeb()
        defer { workspace.remove() }
        let later = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) + 40 * 86_400).description
        let planFile = workspace.root + "/plan.json"
        let planned = try workspace.run(["plan", "-f", "DIR", "--at", later, "--out", planFile])
        #expect(planned.stdout.contains("RotationDue"), "\(planned.stdout)")
        let version = try workspace.secret("web")
        let refused = try workspace.run(["apply", planFile])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the saved plan was made for \(later) (plan --at), which has not come yet"), "\(refused.stderr)")
        #expect(try workspace.secret("web") == version, "nothing was rotated")
        #expect(try workspace.run(["show", planFile]).status == 1)
    }

    @Test func commandsOutsideTheirDirectoryCreateNothingAndSayWhereTheyLooked() throws {
        let workspace = try Self.appliedWeb()
        defer { workspace.remove() }
        let secret = try workspace.secret("web")
        #expect(try workspace.run(["status", "-f", "DIR"]).status == 0)
        let elsewhere = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        BinaryRunner.write(secret + "\n", to: workspace.root + "/presented")
        // From another directory, without -f: each command reads ./.tokenctl, which does not exist.
        func runThere(_ command: String) throws -> BinaryRunner.Outcome {
            try BinaryRunner.runProgram("/bin/sh", ["-c", "cd \"$1\" && exec \"$0\" \(command) < \"$2\"", BinaryRunner.executable,
                                                    elsewhere, workspace.root + "/presented"])
        }
        for command in ["verify", "status", "forecast", "audit --verify"] {
            let outcome = try runThere(command)
            #expect(outcome.status == 1, "\(command): \(outcome.stdout)\(outcome.stderr)")
            #expect(outcome.stderr.contains("(no -f or --state-dir given, so the current directory)"), "\(command): \(outcome.stderr)")
            #expect(!outcome.stdout.contains("unknown") && !outcome.stdout.contains("intact"), "\(command): \(outcome.stdout)")
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: elsewhere)).isEmpty, "no command created state")
        let named = try BinaryRunner.runProgram("/bin/sh", ["-c", "exec \"$0\" verify --state-dir \"$1\" < \"$2\"", BinaryRunner.executable,
                                                             workspace.state, workspace.root + "/presented"])
        #expect(named.status == 0 && named.stdout.hasPrefix("valid:"), "with the state named, the same token is valid: \(named.stderr)")
    }

    @Test func planAndApplyCountsAgreeForARotationWithoutOverlap() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        // No overlap: the plan lists the retirement of the replaced version, and apply does exactly what it lists.
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "0s")))
        #expect(try workspace.apply(at: 0).status == 0)
        let planned = try workspace.run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(31 * 86_400)])
        #expect(planned.stdout.contains("Plan: 1 to rotate, 1 to retire."), "\(planned.stdout)")
        #expect(planned.stdout.contains("replaced by v2 without overlap: retired once v2 is active"), "\(planned.stdout)")
        let rotated = try workspace.apply(at: 31 * 86_400)
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        #expect(rotated.stdout.hasPrefix("Planned for 2026-12-31 12:00 UTC at state serial"), "\(rotated.stdout)")
        #expect(rotated.stdout.contains("Plan: 1 to rotate, 1 to retire."), "\(rotated.stdout)")
        #expect(rotated.stdout.contains("Apply complete: 2 changes applied, 0 failed."), "\(rotated.stdout)")
        #expect(try workspace.inventory().filter { !$0.revoked }.count == 1, "v1 went with its rotation")
        #expect(try workspace.apply(at: 31 * 86_400 + 1).stdout.contains("No changes."))
    }

    @Test func execPutsTheSecretInTheEnvironment() throws {
        let workspace = try Self.appliedWeb()
        defer { workspace.remove() }
        let secret = try workspace.secret("web")
        BinaryRunner.write(secret, to: workspace.root + "/expected")
        let checked = try workspace.run(["exec", "-f", "DIR", "--env", "API_TOKEN=apps/web", "--", "/bin/sh", "-c",
                                         "test \"$API_TOKEN\" = \"$(cat \"$0\")\" && echo same", workspace.root + "/expected"])
        #expect(checked.status == 0 && checked.stdout == "same\n")
        #expect(!checked.stdout.contains(secret) && !checked.stderr.contains(secret))
    }

    @Test func oneFailingChangeDoesNotStopTheOthers() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let postgresIssuer = """
            ---
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: reporting-db}
            spec: {type: postgres, postgres: {url: env:PG_ADMIN_URL}}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: reader, namespace: apps, owner: team-apps}
            spec: {issuer: reporting-db, scopes: ["role:read"], lifespan: 30d}

            """
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")
                                                    + postgresIssuer))
        let outcome = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.contains("failed  issue     apps/reader v1: issuer 'reporting-db': the environment variable PG_ADMIN_URL (its admin URL) is not set"))
        #expect(outcome.stdout.contains("Apply complete: 1 change applied, 1 failed."))
        #expect(try workspace.verify(try workspace.secret("web"), at: 0) == 0)
    }
}

/// Behaviour on a terminal, through `script` (util-linux/bsdutils) giving the command a pseudo-terminal.
@Suite struct TerminalTests {
    static func onTerminal(_ command: String, input: String) throws -> BinaryRunner.Outcome {
        try BinaryRunner.runProgram("/bin/sh", ["-c", "printf '%s' \"$0\" | script -qec \"$1\" /dev/null", input, command])
    }

    @Test func applyAsksForConfirmationOnATerminalOnly() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let piped = try workspace.run(["apply", "-f", "DIR"])
        #expect(piped.status == 1)
        #expect(piped.stderr.contains("not applying without confirmation"))
        let declined = try Self.onTerminal("'\(BinaryRunner.executable)' apply -f '\(workspace.root)'", input: "no\n")
        #expect(declined.stdout.contains("Apply these changes? Only 'yes' is accepted:"))
        #expect(declined.stdout.contains("Apply cancelled; nothing was changed."))
        #expect(try await workspace.recorded().tokens.isEmpty)
        let accepted = try Self.onTerminal("'\(BinaryRunner.executable)' apply -f '\(workspace.root)'", input: "yes\n")
        #expect(accepted.stdout.contains("Apply complete: 1 change applied, 0 failed."), "\(accepted.stdout)")
        #expect(try await workspace.recorded().tokens.count == 1)
    }

    @Test func secretGetRefusesATerminalUnlessRevealed() throws {
        let workspace = try ApplyMoreTests.appliedWeb()
        defer { workspace.remove() }
        let secret = try workspace.secret("web")
        let refused = try Self.onTerminal("'\(BinaryRunner.executable)' secret get -f '\(workspace.root)' apps/web", input: "")
        #expect(refused.stdout.contains("refusing to print a secret to a terminal"))
        let leaked = refused.stdout.contains(secret)
        #expect(!leaked)
        let revealed = try Self.onTerminal("'\(BinaryRunner.executable)' secret get --reveal -f '\(workspace.root)' apps/web", input: "")
        let shown = revealed.stdout.contains(secret)
        #expect(shown)
    }
}
