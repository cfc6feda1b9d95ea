import Foundation
import Testing

/// `tokenctl rotate`: a rotation on an operator's word, through plan and confirmation, recorded with its reason.
@Suite struct RotateCommandTests {
    typealias Workspace = ApplyCommandTests.Workspace

    static func applied() throws -> Workspace {
        let workspace = Workspace()
        let tokens = ["web", "api", "batch"].map { ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d") }
        workspace.write(ApplyCommandTests.manifests(tokens: tokens.joined()))
        let first = try workspace.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        return workspace
    }

    @Test func aRequestedRotationKeepsTheOverlapAndIsAudited() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let web = try workspace.secret("web"), api = try workspace.secret("api")
        let rotated = try workspace.run(at: ApplyCommandTests.at(60), ["rotate", "-f", "DIR", "apps/web", "--reason", "INC-7: pasted in chat",
                                                                        "--auto-approve"])
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        #expect(rotated.stdout.contains("~ rotate    apps/web v1 → v2"), "\(rotated.stdout)")
        #expect(rotated.stdout.contains("Requested: requested: INC-7: pasted in chat; the current version overlaps its successor for 1d"))
        #expect(rotated.stdout.contains("Plan: 1 to rotate."), "only the token asked for: \(rotated.stdout)")
        #expect(try workspace.secret("web") != web && workspace.secret("api") == api)
        #expect(try workspace.verify(web, at: 120) == 0, "the old credential stays valid for its overlap")
        let audit = try workspace.run(["audit", "-f", "DIR", "--json"])
        #expect(audit.stdout.contains("INC-7: pasted in chat") && audit.stdout.contains("\"rotate\""), "\(audit.stdout)")
        #expect(!audit.stdout.contains(web) && !rotated.stdout.contains(web))
    }

    @Test func aCompromisedCredentialIsRevokedAtOnce() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let api = try workspace.secret("api")
        let rotated = try workspace.run(at: ApplyCommandTests.at(60), ["rotate", "-f", "DIR", "--issuer", "local", "--reason", "INC-8: laptop stolen",
                                                                        "--compromised", "--auto-approve"])
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        #expect(rotated.stdout.contains("Plan: 3 to rotate, 3 to retire."), "\(rotated.stdout)")
        #expect(rotated.stdout.contains("- retire    apps/api v1") && rotated.stdout.contains("Compromised: compromised: revoked now"))
        #expect(try workspace.verify(api, at: 61) == 1, "the compromised credential no longer verifies")
        #expect(try workspace.verify(try workspace.secret("api"), at: 61) == 0, "its successor does")
    }

    @Test func refusalsChangeNothing() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let web = try workspace.secret("web")
        let auditBefore = try workspace.run(["audit", "-f", "DIR", "--json"]).stdout
        let unknown = try workspace.run(["rotate", "-f", "DIR", "apps/nope", "--reason", "x", "--auto-approve"])
        #expect(unknown.status == 1 && unknown.stderr.contains("token apps/nope is not in the manifests"), "\(unknown.stderr)")
        #expect(try workspace.run(["audit", "-f", "DIR", "--json"]).stdout == auditBefore, "a refused request writes nothing, not even to the audit log")
        let pasted = try workspace.run(["rotate", "-f", "DIR", "apps/web", "--reason", "leaked \(web)", "--auto-approve"])
        #expect(pasted.status == 1 && pasted.stderr.contains("--reason looks like it holds a secret"), "\(pasted.stderr)")
        #expect(!pasted.stderr.contains(web) && !pasted.stdout.contains(web), "the pasted credential is not echoed")
        let unconfirmed = try workspace.run(["rotate", "-f", "DIR", "apps/web", "--reason", "x"])
        #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("stdin is not a terminal"), "\(unconfirmed.stderr)")
        let noReason = try workspace.run(["rotate", "-f", "DIR", "apps/web", "--auto-approve"])
        #expect(noReason.status == 1 && noReason.stderr.contains("--reason"), "\(noReason.stderr)")
        let nothingChosen = try workspace.run(["rotate", "-f", "DIR", "--reason", "x", "--auto-approve"])
        #expect(nothingChosen.status == 1, "\(nothingChosen.stderr)")
        #expect(try workspace.secret("web") == web)
        let commit = try workspace.run(["rotate", "-f", "DIR", "apps/web", "--reason", "deploy 0123456789abcdef0123456789abcdef01234567",
                                        "--auto-approve"])
        #expect(commit.status == 0, "a commit id in a reason is not a secret: \(commit.stderr)")
    }
}
