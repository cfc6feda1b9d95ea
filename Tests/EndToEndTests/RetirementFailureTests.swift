import Foundation
import Testing

/// A retirement that fails half-way is never recorded as done: the version stays in state and the next run finishes it.
@Suite struct RetirementFailureTests {
    /// `apps/web` and `apps/api` applied at t0, then `apps/api` removed from the manifests.
    static func apiRemoved() throws -> ApplyCommandTests.Workspace {
        let workspace = ApplyCommandTests.Workspace()
        let web = ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")
        workspace.write(ApplyCommandTests.manifests(tokens: web + ApplyCommandTests.token("api", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        workspace.write(ApplyCommandTests.manifests(tokens: web))
        return workspace
    }

    @Test func aRevocationThatFailsLeavesTheVersionToRetireAgain() async throws {
        let world = try PostgresIssuerTests.World()
        defer { world.remove() }
        world.workspace.write(world.issuer() + world.token("keep") + world.token("gone"))
        #expect(try world.apply().status == 0)
        world.workspace.write(world.issuer() + world.token("keep"))

        // The server cannot be reached: the role cannot be dropped, so the retirement must not be recorded.
        let unreachable = try world.apply(at: 1, ["--allow-mass-retirement"],
                                          environment: ["PG_ADMIN_URL": "postgres://tokenctl_admin:x@127.0.0.1:1/postgres"])
        #expect(unreachable.status == 1, "\(unreachable.stdout)\(unreachable.stderr)")
        #expect(unreachable.stdout.contains("failed  retire    apps/gone v1"), "\(unreachable.stdout)")
        #expect(try await world.workspace.recorded().tokens.count == 2, "not recorded as retired")
        #expect(try world.roles().contains(world.role("gone", 1)))

        let retried = try world.apply(at: 2, ["--allow-mass-retirement"])
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        #expect(retried.stdout.contains("done    retire    apps/gone v1"), "\(retried.stdout)")
        #expect(try await world.workspace.recorded().tokens.count == 1)
        #expect(try !world.roles().contains(world.role("gone", 1)))
    }

    @Test func aStoreThatCannotBeCleanedLeavesTheRetirementToFinish() async throws {
        let workspace = try Self.apiRemoved()
        defer { workspace.remove() }
        let dotenv = workspace.root + "/app.env"
        let saved = try Data(contentsOf: URL(fileURLWithPath: dotenv))
        try FileManager.default.removeItem(atPath: dotenv)
        try FileManager.default.createDirectory(atPath: dotenv, withIntermediateDirectories: false)

        let failed = try workspace.apply(at: 60, ["--allow-mass-retirement"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(failed.stdout.contains("revoked at the issuer, but store 'envfile' still holds it"), "\(failed.stdout)")
        #expect(try await workspace.recorded().tokens.count == 2, "not recorded as retired while a store still holds it")

        try FileManager.default.removeItem(atPath: dotenv)
        try saved.write(to: URL(fileURLWithPath: dotenv))
        let retried = try workspace.apply(at: 120, ["--allow-mass-retirement"])
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        #expect(try await workspace.recorded().tokens.count == 1)
        let remaining = try String(contentsOfFile: dotenv, encoding: .utf8)
        #expect(!remaining.contains("APPS_API="), "the retired secret is gone from the store: \(remaining.count) bytes left")
        #expect(remaining.contains("APPS_WEB="))
    }
}
