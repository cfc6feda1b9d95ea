import Foundation
import Testing
import TokenctlModel

/// Faults during apply: a clear error, exit 1, nothing already issued lost, and the next run picks up.
@Suite struct FaultTests {
    static func manifests(vaultPath: String, tokens: [String]) -> String {
        var text = ManifestText.header(vaultPath: vaultPath, dotenv: false)
        for name in tokens {
            text += """
                ---
                apiVersion: tokenctl/v1
                kind: Token
                metadata: {name: \(name), namespace: apps, owner: team-apps}
                spec: {issuer: local, scopes: [read], lifespan: 90d, deliverTo: [{store: vault, key: apps/\(name)}]}

                """
        }
        return text
    }

    @Test func aStoreInAMissingDirectoryFailsClearlyThenRecovers() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(vaultPath: "missing/dir/secrets.vault", tokens: ["web"]))
        let failed = try workspace.apply(at: 0)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("failed  issue     apps/web v1: store 'vault': cannot write '\(workspace.root)/missing/dir/secrets.vault'"))
        #expect(try workspace.inventory().filter { !$0.revoked }.isEmpty, "an undeliverable credential is revoked")
        try FileManager.default.createDirectory(atPath: workspace.root + "/missing/dir", withIntermediateDirectories: true)
        let recovered = try workspace.apply(at: 10)
        #expect(recovered.status == 0, "\(recovered.stdout)")
        #expect(recovered.stdout.contains("+ issue     apps/web v2"))
        #expect(try workspace.verify(try workspace.secret("web"), at: 11) == 0)
    }

    @Test func aCorruptStoreIsNotOverwritten() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(vaultPath: "secrets.vault", tokens: ["web"]))
        let garbage = Data("TKCSTORE".utf8) + Data([1]) + Data(repeating: 0xAB, count: 100)
        try garbage.write(to: URL(fileURLWithPath: workspace.root + "/secrets.vault"))
        let failed = try workspace.apply(at: 0)
        #expect(failed.status == 1)
        // No key can open it (none was ever made, and a new one is not made for a store that exists): named, not touched.
        #expect((failed.stdout + failed.stderr).contains("secrets.vault"), "\(failed.stdout)\(failed.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: workspace.root + "/secrets.vault")) == garbage)
        #expect(try workspace.inventory().filter { !$0.revoked }.isEmpty)
    }

    @Test func aFullDiskFailsClearlyAndTheNextRunPicksUp() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(vaultPath: "secrets.vault", tokens: ["web"]))
        #expect(try workspace.apply(at: 0).status == 0)
        let web = try workspace.secret("web")
        let many = (0..<400).map { "svc-\($0)" }
        workspace.write(Self.manifests(vaultPath: "secrets.vault", tokens: ["web"] + many))
        // A file-size limit stands in for a full disk: writes past 64 KiB fail with EFBIG.
        let limited = try BinaryRunner.runProgram("/bin/sh", ["-c", "trap '' XFSZ; ulimit -f 128; exec \"$0\" apply -f \"$1\" --auto-approve",
                                                             BinaryRunner.executable, workspace.root],
                                                  environment: try BinaryRunner.clock(at: ApplyCommandTests.at(10)))
        #expect(limited.status == 1, "\(limited.stdout.suffix(300))\(limited.stderr.suffix(300))")
        #expect(limited.signal == 0, "it must fail with a message, not crash")
        let output = limited.stdout + limited.stderr
        #expect(output.contains("File too large") || output.contains("check free disk space"), "\(output.suffix(400))")
        // Intents were recorded before the write that failed: the message must not claim otherwise, and says it once.
        #expect(!output.contains("nothing was recorded"), "\(output.suffix(400))")
        #expect(output.components(separatedBy: "tokenctl: error:").count <= 2, "\(output.suffix(600))")
        #expect(try workspace.verify(web, at: 11) == 0, "what was issued before is not lost")
        let recovered = try workspace.apply(at: 20)
        #expect(recovered.status == 0, "\(recovered.stdout.suffix(500))\(recovered.stderr.suffix(500))")
        try await CrashTests.checkInvariantsSingleStore(workspace, expected: 401)
    }
}

extension CrashTests {
    /// The crash invariants for workspaces with only the encrypted store.
    static func checkInvariantsSingleStore(_ workspace: ApplyCommandTests.Workspace, expected: Int) async throws {
        let state = try await workspace.recorded()
        let live = Set(try workspace.inventory().filter { !$0.revoked }.map(\.credentialID))
        let recordedLive = Set(state.tokens.values.flatMap { $0.versions.filter { $0.status == .active || $0.status == .retiring }.map(\.credentialID) })
        #expect(live == recordedLive)
        #expect(state.tokens.count == expected)
        #expect(state.tokens.values.allSatisfy { token in token.versions.filter { $0.status == .active }.count == 1 })
    }
}
