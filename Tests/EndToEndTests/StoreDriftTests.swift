import Foundation
import Testing

/// `--refresh` checks what the stores hold against the recorded fingerprints: a deleted or rolled-back store is
/// noticed and repaired from another store, and a secret no store holds any more is replaced by a rotation.
@Suite struct StoreDriftTests {
    typealias Workspace = ApplyCommandTests.Workspace

    static func applied() throws -> Workspace {
        let workspace = Workspace()
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let first = try workspace.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        return workspace
    }

    @Test func aDeletedStoreIsRedeliveredFromAnother() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let secret = try workspace.secret("web")
        #expect(unlink(workspace.root + "/secrets.vault") == 0)
        let unrefreshed = try workspace.run(["plan", "-f", "DIR", "--detailed-exitcode", "--at", ApplyCommandTests.at(10)])
        #expect(unrefreshed.status == 0, "without --refresh no store is read")
        let plan = try workspace.run(["plan", "-f", "DIR", "--refresh", "--detailed-exitcode", "--at", ApplyCommandTests.at(10)])
        #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("DeliveryMissing") && plan.stdout.contains("vault:apps/web"), "\(plan.stdout)")
        let applied = try workspace.apply(at: 10, ["--refresh"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(FileManager.default.fileExists(atPath: workspace.root + "/secrets.vault"))
        #expect(try workspace.secret("web") == secret)
        let settled = try workspace.run(["plan", "-f", "DIR", "--refresh", "--detailed-exitcode", "--at", ApplyCommandTests.at(11)])
        #expect(settled.status == 0, "\(settled.stdout)\(settled.stderr)")
        #expect(!plan.stdout.contains(secret) && !applied.stdout.contains(secret) && !applied.stderr.contains(secret))
    }

    @Test func aStoreRestoredFromAnOldBackupIsNoticed() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let backup = try #require(FileManager.default.contents(atPath: workspace.root + "/secrets.vault"))
        #expect(try workspace.apply(at: 31 * 86_400).status == 0, "a rotation: the vault now holds v2")
        let current = try workspace.secret("web")
        #expect(FileManager.default.createFile(atPath: workspace.root + "/secrets.vault", contents: backup))
        let plan = try workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(31 * 86_400 + 10)])
        #expect(plan.stdout.contains("DeliveryDrifted") && plan.stdout.contains("vault:apps/web holds something else"), "\(plan.stdout)")
        #expect(try workspace.apply(at: 31 * 86_400 + 10, ["--refresh"]).status == 0)
        #expect(try workspace.secret("web") == current)
    }

    @Test func statusSaysWhenAStoreNoLongerHoldsWhatWasDelivered() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let backup = try #require(FileManager.default.contents(atPath: workspace.root + "/secrets.vault"))
        #expect(try workspace.apply(at: 31 * 86_400).status == 0, "a rotation: the vault now holds v2")
        let fine = try workspace.run(["status", "-f", "DIR", "--at", ApplyCommandTests.at(31 * 86_400 + 10)])
        #expect(fine.stdout.contains("1 token: 1 ok."), "\(fine.stdout)\(fine.stderr)")
        #expect(FileManager.default.createFile(atPath: workspace.root + "/secrets.vault", contents: backup))
        unlink(workspace.root + "/app.env")
        let status = try workspace.run(["status", "-f", "DIR", "--json", "--at", ApplyCommandTests.at(31 * 86_400 + 10)])
        #expect(status.stdout.contains("store 'vault' holds something else under 'apps/web'"), "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("store 'envfile' has nothing under 'apps/web'"), "\(status.stdout)")
        let table = try workspace.run(["status", "-f", "DIR", "--at", ApplyCommandTests.at(31 * 86_400 + 10)])
        #expect(!table.stdout.contains("1 ok"), "\(table.stdout)")
    }

    @Test func aSecretNoStoreHoldsIsReplacedByARotation() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let lost = try workspace.secret("web")
        #expect(unlink(workspace.root + "/secrets.vault") == 0 && unlink(workspace.root + "/app.env") == 0)
        let plan = try workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(10)])
        #expect(plan.stdout.contains("rotate") && plan.stdout.contains("DeliveryLost"), "\(plan.stdout)")
        let applied = try workspace.apply(at: 10, ["--refresh"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        let replacement = try workspace.secret("web")
        #expect(replacement.hasPrefix("tkc_") && replacement != lost)
    }

    /// A renamed token that keeps its key: retiring the old name must not delete what the new one just stored there.
    @Test func retiringATokenLeavesAKeyAnotherTokenNowHolds() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        func token(_ name: String) -> String {
            """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: \(name), namespace: apps, owner: team-apps}
            spec: {issuer: local, scopes: [read], lifespan: 90d, deliverTo: [{store: vault, key: apps/shared}, {store: envfile, key: apps/shared}]}

            """
        }
        workspace.write(ManifestText.header() + token("old"))
        #expect(try workspace.apply(at: 0).status == 0)
        workspace.write(ManifestText.header() + token("new"))
        let renamed = try workspace.apply(at: 10)
        #expect(renamed.status == 0, "\(renamed.stdout)\(renamed.stderr)")
        #expect(renamed.stdout.contains("+ issue") && renamed.stdout.contains("- retire"), "\(renamed.stdout)")
        let current = try workspace.secret("new")
        #expect(current.hasPrefix("tkc_"), "the new token's secret is still in the stores")
        #expect(try workspace.verify(current, at: 11) == 0)
        let dotenv = try String(contentsOfFile: workspace.root + "/app.env", encoding: .utf8)
        #expect(dotenv.contains("APPS_SHARED="), "the dotenv entry was deleted by the retirement")
    }
}
