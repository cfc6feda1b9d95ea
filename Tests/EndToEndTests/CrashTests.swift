import Foundation
import Testing
import TokenctlBuiltinIssuer
import TokenctlDrivers
import TokenctlModel
import TokenctlSQLite
import TokenctlStores

/// Kills `tokenctl apply` (SIGKILL) at every injection point and at random moments, re-runs it, and checks:
/// nothing is issued twice, no credential is valid at the issuer without being in state, and every active
/// token's secret is in its stores.
@Suite(.serialized) struct CrashTests {
    static let tokenCount = 200

    static func manifests(count: Int) -> String {
        var text = ManifestText.header()
        for index in 0..<count {
            text += """
                ---
                apiVersion: tokenctl/v1
                kind: Token
                metadata: {name: svc-\(index), namespace: crash, owner: team-crash}
                spec:
                  issuer: local
                  scopes: [read]
                  lifespan: 90d
                  rotation: {every: 30d, overlap: 1d}
                  deliverTo: [{store: vault, key: crash/svc-\(index)}, {store: envfile, key: crash/svc-\(index)}]

                """
        }
        return text
    }

    static func day(_ days: Int64) -> String { ApplyCommandTests.at(days * 86_400) }

    static func apply(_ workspace: ApplyCommandTests.Workspace, at moment: String, fault: String? = nil) throws -> BinaryRunner.Outcome {
        try workspace.run(at: moment, ["apply", "-f", "DIR", "--auto-approve"], environment: fault.map { ["TOKENCTL_FAULT": $0] } ?? [:])
    }

    /// The invariants of SPEC §4 and the apply issue, checked against the issuer's inventory and both stores.
    static func checkInvariants(_ workspace: ApplyCommandTests.Workspace, expected: Int, context: String) async throws {
        let state = try await workspace.recorded()
        let live = Set(try workspace.inventory().filter { !$0.revoked }.map(\.credentialID))
        let recordedLive = Set(state.tokens.values.flatMap { token in
            token.versions.filter { $0.status == .active || $0.status == .retiring }.map(\.credentialID)
        })
        let onlyAtIssuer = live.subtracting(recordedLive).count, onlyInState = recordedLive.subtracting(live).count
        #expect(live == recordedLive, "\(context): valid at the issuer but not in state: \(onlyAtIssuer), in state but not valid: \(onlyInState)")
        #expect(state.tokens.count == expected, Comment(rawValue: context))
        let key = try EncryptedFileStore.key(fromText: String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8), reference: "test")
        let vault = EncryptedFileStore(path: workspace.root + "/secrets.vault", key: key, keyReference: "test")
        let envfile = DotenvStore(path: workspace.root + "/app.env")
        var missing = 0
        for token in state.tokens.values {
            let active = token.versions.filter { $0.status == .active }
            #expect(active.count == 1, "\(context): \(token.id) has \(active.count) active versions")
            #expect(!token.versions.contains { $0.status == .pending }, "\(context): \(token.id) left pending")
            guard let current = active.first else { continue }
            #expect(current.deliveries.count == 2, Comment(rawValue: "\(context): \(token.id)"))
            for delivery in current.deliveries {
                let store: any ReadableSecretStore = delivery.store == "vault" ? vault : envfile
                if try await store.fingerprint(key: delivery.key) != delivery.contentFingerprint { missing += 1 }
            }
        }
        #expect(missing == 0, "\(context): \(missing) deliveries do not hold the active secret")
    }

    @Test func repairsAreSummarisedByOutcome() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(count: 12))
        // Killed once every credential is issued and delivered but none activated: the rerun completes all twelve.
        #expect(try Self.apply(workspace, at: Self.day(0), fault: "after-deliver").signal == SIGKILL)
        let rerun = try Self.apply(workspace, at: Self.day(0))
        #expect(rerun.status == 0, "\(rerun.stdout)\(rerun.stderr)")
        #expect(rerun.stderr.contains("repaired 12 changes an interrupted run left unfinished: 12 completed and activated, "
                                      + "0 rolled back"), "\(rerun.stderr)")
        #expect(!rerun.stderr.contains("repaired: "), "no line per token: \(rerun.stderr)")
        try await Self.checkInvariants(workspace, expected: 12, context: "after the summarised repair")
    }

    @Test(arguments: ["after-intent", "after-issue", "after-record-issue", "after-deliver", "after-record"])
    func killedWhileIssuing(_ point: String) async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(count: Self.tokenCount))
        let crashed = try Self.apply(workspace, at: Self.day(0), fault: point)
        #expect(crashed.signal == SIGKILL, "the fault at \(point) should kill the apply")
        let rerun = try Self.apply(workspace, at: Self.day(0))
        #expect(rerun.status == 0, "\(rerun.stdout.suffix(500))\(rerun.stderr.suffix(500))")
        try await Self.checkInvariants(workspace, expected: Self.tokenCount, context: "issue, killed \(point)")
        #expect(try Self.apply(workspace, at: Self.day(0)).stdout == "No changes. Issued credentials match the manifests.\n")
    }

    @Test(arguments: ["after-intent", "after-issue", "after-record-issue", "after-deliver", "after-record", "after-revoke"])
    func killedWhileRotatingAndRetiring(_ point: String) async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(count: Self.tokenCount))
        #expect(try Self.apply(workspace, at: Self.day(0)).status == 0)
        // Day 31: every token rotates; day 33: the overlaps have ended and v1 retires.
        let moment = point == "after-revoke" ? Self.day(33) : Self.day(31)
        if point == "after-revoke" { #expect(try Self.apply(workspace, at: Self.day(31)).status == 0) }
        let crashed = try Self.apply(workspace, at: moment, fault: point)
        #expect(crashed.signal == SIGKILL)
        let rerun = try Self.apply(workspace, at: moment)
        #expect(rerun.status == 0, "\(rerun.stdout.suffix(500))\(rerun.stderr.suffix(500))")
        try await Self.checkInvariants(workspace, expected: Self.tokenCount, context: "rotation, killed \(point)")
    }

    @Test func killedAtRandomMoments() async throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<4 {
            let workspace = ApplyCommandTests.Workspace()
            defer { workspace.remove() }
            workspace.write(Self.manifests(count: 300))
            let delay = Double.random(in: 0.05...0.6, using: &generator)
            _ = try BinaryRunner.killed(after: delay, at: Self.day(0), ["apply", "-f", workspace.root, "--auto-approve"])
            // A second kill during the repairing run, then a clean one.
            _ = try BinaryRunner.killed(after: delay / 2, at: Self.day(0), ["apply", "-f", workspace.root, "--auto-approve"])
            let rerun = try Self.apply(workspace, at: Self.day(0))
            #expect(rerun.status == 0, "round \(round) (killed after \(delay) s): \(rerun.stderr.suffix(500))")
            try await Self.checkInvariants(workspace, expected: 300, context: "round \(round), killed after \(delay) s")
        }
    }
}
