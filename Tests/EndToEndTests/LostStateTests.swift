import Foundation
import Testing
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// A lost or emptied state database is never a fresh start: apply refuses, and `state rebuild` recovers it.
@Suite struct LostStateTests {
    typealias Workspace = ApplyCommandTests.Workspace

    static let tokenNames = (1...5).map { "svc-\($0)" }

    static func applied() throws -> Workspace {
        let workspace = Workspace()
        workspace.write(ApplyCommandTests.manifests(tokens: tokenNames.map {
            ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d")
        }.joined()))
        let first = try workspace.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        return workspace
    }

    /// What must not change while apply refuses: the issuer's credentials and both stores' bytes.
    static func evidence(_ workspace: Workspace) throws -> (credentials: Int, vault: Data?, dotenv: Data?) {
        (try workspace.inventory().count, FileManager.default.contents(atPath: workspace.root + "/secrets.vault"),
         FileManager.default.contents(atPath: workspace.root + "/app.env"))
    }

    /// A comparable digest of a recorded token: versions with their credential, fingerprint, status and the deliveries of
    /// active versions (a retiring version's keys hold its successor now, so no store shows where it was delivered).
    static func digest(_ state: RecordedState) -> [String] {
        state.tokens.values.sorted { $0.id < $1.id }.flatMap { token in
            token.versions.map { version in
                "\(token.id) v\(version.version) \(version.credentialID) \(version.fingerprint) \(version.status.rawValue) "
                    + (version.status == .active ? version.deliveries : []).map { "\($0.store):\($0.key)=\($0.contentFingerprint)" }
                        .sorted().joined(separator: ",")
            }
        }
    }

    @Test(arguments: ["truncated", "deleted"])
    func applyRefusesEmptyStateBesideLiveCredentials(loss: String) async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let before = try Self.evidence(workspace)
        let statePath = workspace.state + "/" + SQLiteStateStore.fileName
        if loss == "truncated" {
            #expect(truncate(statePath, 0) == 0)
        } else {
            for suffix in ["", "-wal", "-shm"] { unlink(statePath + suffix) }
        }
        let refused = try workspace.apply(at: 10)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("records no tokens") && refused.stderr.contains("tokenctl state rebuild"), "\(refused.stderr)")
        #expect(refused.stderr.contains("issuer 'local' holds 5 live credentials"), "\(refused.stderr)")
        let after = try Self.evidence(workspace)
        #expect(after.credentials == before.credentials, "no credential was issued")
        #expect(after.vault == before.vault && after.dotenv == before.dotenv, "no store was written")
    }

    @Test func rebuildRecoversTheStateThatWasLost() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let original = Self.digest(try await workspace.recorded())
        let statePath = workspace.state + "/" + SQLiteStateStore.fileName
        #expect(truncate(statePath, 0) == 0)

        let rebuilt = try workspace.run(["state", "rebuild", "-f", "DIR"])
        #expect(rebuilt.status == 0, "\(rebuilt.stdout)\(rebuilt.stderr)")
        #expect(rebuilt.stdout.contains("rebuilt 5 of 5 tokens (5 live credential versions, 10 deliveries found)"), "\(rebuilt.stdout)")
        #expect(Self.digest(try await workspace.recorded()) == original)
        let plan = try workspace.run(["plan", "-f", "DIR", "--refresh", "--detailed-exitcode", "--at", ApplyCommandTests.at(10)])
        #expect(plan.status == 0, "nothing left to do, no ghost: \(plan.stdout)\(plan.stderr)")

        let again = try workspace.run(["state", "rebuild", "-f", "DIR"])
        #expect(again.status == 1 && again.stderr.contains("already records 5 tokens"), "\(again.stderr)")
        let audit = try workspace.run(["audit", "-f", "DIR"])
        #expect(audit.stdout.contains("state rebuild"), "\(audit.stdout)")
    }

    @Test func rebuildKeepsARotationsOverlap() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "2d")))
        #expect(try workspace.apply(at: 0).status == 0)
        #expect(try workspace.apply(at: 31 * 86_400).status == 0)
        let original = try await workspace.recorded()
        #expect(original.tokens.values.first?.versions.map(\.status) == [.retiring, .active])
        #expect(truncate(workspace.state + "/" + SQLiteStateStore.fileName, 0) == 0)
        #expect(try workspace.run(["state", "rebuild", "-f", "DIR"]).status == 0)
        let recovered = try await workspace.recorded()
        #expect(Self.digest(recovered) == Self.digest(original))
        #expect(recovered.tokens.values.first?.versions.first?.retireAfter == original.tokens.values.first?.versions.first?.retireAfter)
        // When the overlap ends, the old version is retired and the stores keep the new one.
        let current = try workspace.secret("web")
        let retired = try workspace.apply(at: 34 * 86_400)
        #expect(retired.status == 0 && retired.stdout.contains("retire"), "\(retired.stdout)\(retired.stderr)")
        #expect(try workspace.secret("web") == current)
        #expect(try workspace.verify(current, at: 34 * 86_400 + 1) == 0)
    }

    @Test func statusSaysWhenTheBuiltinAuthorityIsGone() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        #expect(unlink(workspace.state + "/authority.db") == 0)
        let status = try workspace.run(["status", "-f", "DIR", "--json", "--at", ApplyCommandTests.at(10)])
        #expect(status.status == 0, "\(status.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let rows = object?["tokens"] as? [[String: Any]] ?? []
        #expect(rows.count == 5)
        #expect(rows.allSatisfy { ($0["health"] as? String) == "needs attention" && (($0["note"] as? String) ?? "").contains("authority.db") },
                "\(rows)")
        // Without the manifests, from the state directory alone, the builtin credentials are recognised by their ids.
        let bare = try BinaryRunner.run(["status", "--state-dir", workspace.state, "--at", ApplyCommandTests.at(10)])
        #expect(bare.stdout.split(separator: "\n").filter { $0.hasPrefix("apps/") && $0.contains("needs attention (the builtin issuer") }.count == 5, "\(bare.stdout)")
    }

    @Test func planOutWritesNothingToTheStateAndWorksUnderAnotherHoldersLock() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let store = try SQLiteStateStore(directory: workspace.state, mode: .readWrite)
        let before = try await store.auditRecords().count
        let serial = try await store.serial()
        _ = try await store.acquireLock(LockRequest(holder: "operator", host: ProcessInfo.processInfo.hostName, processID: getpid(),
                                                    ttl: TokenDuration(seconds: 600)), now: .now)
        let plan = try workspace.run(["plan", "-f", "DIR", "--out", workspace.root + "/plan.json", "--at", ApplyCommandTests.at(10)])
        #expect(plan.status == 0 && plan.stderr.contains("locked by operator"), "\(plan.stdout)\(plan.stderr)")
        #expect(FileManager.default.fileExists(atPath: workspace.root + "/plan.json"))
        #expect(try await store.auditRecords().count == before, "the plan wrote no audit entry")
        #expect(try await store.serial() == serial, "the plan wrote no state")
        try await store.releaseLock(holder: "operator", processID: getpid())
    }

    @Test func rebuildActivatesTheNewestVersionAStoreHolds() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        // A v2 the issuer made but no store ever got (an issue interrupted, then never repaired).
        let authority = try BuiltinAuthority(directory: workspace.state, mode: .readWrite)
        let stray = try authority.issue(IssueRequest(issuer: "local", owner: "team-apps", subject: "apps/svc-1", scopes: ["read"],
                                                     expiresAt: nil, idempotencyKey: "apps/svc-1#v2#abc"), now: ApplyCommandTests.t0)
        #expect(truncate(workspace.state + "/" + SQLiteStateStore.fileName, 0) == 0)
        #expect(try workspace.run(["state", "rebuild", "-f", "DIR"]).status == 0)
        let token = try #require(try await workspace.recorded().tokens[TokenID(namespace: "apps", name: "svc-1")])
        #expect(token.active?.version == 1 && token.active?.deliveries.count == 2, "\(token.versions)")
        #expect(token.versions.last?.status == .retiring && token.versions.last?.credentialID == stray.credentialID)
        // The next apply revokes the stray version (it retires from the rebuild's real time on); the delivered one stays.
        let secret = try workspace.secret("svc-1")
        let later = Timestamp.now.secondsSinceEpoch - ApplyCommandTests.t0.secondsSinceEpoch + 60
        #expect(try workspace.apply(at: later).status == 0)
        #expect(try workspace.inventory().first { $0.credentialID == stray.credentialID }?.revoked == true)
        #expect(try workspace.verify(secret, at: later + 1) == 0)
    }

    @Test func aMissingMasterKeyIsNotRemadeWhileTheAuditLogNeedsIt() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        // Only a dotenv store: the master key serves the audit log alone.
        let header = ManifestText.header(dotenv: true).replacingOccurrences(of: "{type: encrypted-file, encryptedFile: {path: secrets.vault, key: env:TOKENCTL_MASTER_KEY}}",
                                                                           with: "{type: dotenv, dotenv: {path: other.env}}")
        func tokens(_ names: [String]) -> String {
            names.map { ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d").replacingOccurrences(of: "{store: vault, key: apps/\($0)}, ", with: "") }.joined()
        }
        workspace.write(header + tokens(["web"]))
        #expect(try workspace.apply(at: 0).status == 0)
        #expect(unlink(workspace.state + "/master.key") == 0)
        workspace.write(header + tokens(["web", "api"]))
        let refused = try workspace.apply(at: 10)
        #expect(refused.status == 1 && refused.stderr.contains("TOKENCTL_MASTER_KEY"), "\(refused.stdout)\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workspace.state + "/master.key"), "no new key poses as the lost one")
    }

    @Test func aMissingMasterKeyIsNotReplacedWhileAVaultNeedsIt() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let keyPath = workspace.state + "/master.key"
        #expect(unlink(keyPath) == 0)
        let vault = FileManager.default.contents(atPath: workspace.root + "/secrets.vault")
        // One more token, so that apply has something to deliver and opens the stores.
        workspace.write(ApplyCommandTests.manifests(tokens: (Self.tokenNames + ["svc-new"]).map {
            ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d")
        }.joined()))
        let refused = try workspace.apply(at: 10)
        #expect(refused.status == 1)
        // The audit log, authenticated with a key derived from the master key, is the first to miss it.
        #expect(refused.stderr.contains("TOKENCTL_MASTER_KEY") && refused.stderr.contains("master.key"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: keyPath), "no new master key was made")
        #expect(FileManager.default.contents(atPath: workspace.root + "/secrets.vault") == vault)
    }
}
