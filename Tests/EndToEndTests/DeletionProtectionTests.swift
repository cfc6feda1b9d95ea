import Foundation
import Testing
import TokenctlModel

/// A partial manifest set, or one caught half-written, must not retire the tokens it happens to leave out.
@Suite(.serialized) struct DeletionProtectionTests {
    typealias Workspace = ApplyCommandTests.Workspace

    static func tokens(_ names: [String], lifespan: String = "90d", every: String = "30d") -> String {
        names.map { ApplyCommandTests.token($0, lifespan: lifespan, every: every, overlap: "1d") }.joined()
    }

    static let teamA = (1...10).map { "team-a-\($0)" }
    static let teamB = (1...10).map { "team-b-\($0)" }

    /// Two manifest files, base.yaml holding the issuer and stores, applied together.
    static func appliedTwoTeams() throws -> Workspace {
        let workspace = Workspace()
        BinaryRunner.write(ManifestText.header(), to: workspace.root + "/base.yaml")
        BinaryRunner.write(tokens(teamA), to: workspace.root + "/team-a.yaml")
        BinaryRunner.write(tokens(teamB), to: workspace.root + "/team-b.yaml")
        let first = try workspace.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        return workspace
    }

    @Test func aPartialSetOfManifestsRetiresNothingWithoutConsent() throws {
        let workspace = try Self.appliedTwoTeams()
        defer { workspace.remove() }
        let files = ["-f", workspace.root + "/base.yaml", "-f", workspace.root + "/team-b.yaml", "--state-dir", workspace.state]
        // The state records the roots it is managed from: another set is refused, saying what differs.
        let directory = URL(fileURLWithPath: workspace.root).lastPathComponent
        let other = try workspace.run(["plan"] + files + ["--at", ApplyCommandTests.at(10)])
        #expect(other.status == 1, "\(other.stdout)\(other.stderr)")
        #expect(other.stderr.contains("this state is managed from the manifests at \(directory), and this run reads base.yaml, "
                                      + "team-b.yaml (not given: \(directory); new: base.yaml, team-b.yaml)"), "\(other.stderr)")
        let unconsented = try workspace.run(at: ApplyCommandTests.at(10), ["apply"] + files + ["--auto-approve"])
        #expect(unconsented.status == 1 && unconsented.stderr.contains("--new-manifest-roots"), "\(unconsented.stderr)")
        #expect(try workspace.inventory().filter(\.revoked).isEmpty, "no credential was revoked")

        // Declared the new complete set, the blast-radius guard still stands between it and a mass retirement.
        let partial = files + ["--new-manifest-roots"]
        let plan = try workspace.run(["plan"] + partial + ["--at", ApplyCommandTests.at(10)])
        #expect(plan.status == 0)
        #expect(plan.stderr.contains("apply would refuse this plan") && plan.stderr.contains("retires 10 of the 20 managed tokens"),
                "\(plan.stderr)")

        let refused = try workspace.run(at: ApplyCommandTests.at(10), ["apply"] + partial + ["--auto-approve"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("more than the 10% (2) allowed") && refused.stderr.contains("Nothing was changed"), "\(refused.stderr)")
        #expect(try workspace.inventory().filter(\.revoked).isEmpty, "no credential was revoked")

        let raised = try workspace.run(at: ApplyCommandTests.at(10), ["apply"] + partial + ["--auto-approve", "--retire-limit", "60"])
        #expect(raised.status == 0, "\(raised.stdout)\(raised.stderr)")
        #expect(try workspace.inventory().filter(\.revoked).count == 10)
    }

    @Test func rootsWithTheSameNameAreToldApart() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        for team in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: workspace.root + "/teams/\(team)/manifests", withIntermediateDirectories: true)
        }
        BinaryRunner.write(ManifestText.header() + Self.tokens(Self.teamA), to: workspace.root + "/teams/a/manifests/tokens.yaml")
        BinaryRunner.write(Self.tokens(Self.teamB), to: workspace.root + "/teams/b/manifests/tokens.yaml")
        let both = ["-f", workspace.root + "/teams/a/manifests", "-f", workspace.root + "/teams/b/manifests", "--state-dir", workspace.state]
        #expect(try workspace.run(at: ApplyCommandTests.at(0), ["apply"] + both + ["--auto-approve"]).status == 0)
        let one = try workspace.run(["plan", "-f", workspace.root + "/teams/a/manifests", "--state-dir", workspace.state,
                                     "--allow-mass-retirement", "--at", ApplyCommandTests.at(10)])
        #expect(one.status == 1, "\(one.stdout)\(one.stderr)")
        #expect(one.stderr.contains("managed from the manifests at a/manifests, b/manifests, and this run reads manifests"), "\(one.stderr)")
    }

    @Test func consentRetiresThemAll() throws {
        let workspace = try Self.appliedTwoTeams()
        defer { workspace.remove() }
        let applied = try workspace.run(at: ApplyCommandTests.at(10), ["apply", "-f", workspace.root + "/base.yaml", "--state-dir",
                                                                       workspace.state, "--auto-approve", "--allow-mass-retirement",
                                                                       "--new-manifest-roots"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(try workspace.inventory().filter(\.revoked).count == 20)
    }

    @Test func theControllerHoldsAMassRetirementAndSaysWhy() async throws {
        let workspace = try Self.appliedTwoTeams()
        defer { workspace.remove() }
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1s", "--settle", "1s",
                                                "--listen", "127.0.0.1:0"], environment: ["TOKENCTL_LOG_LEVEL": "info"], scratch: workspace.root)
        try controller.waitUntilListening()
        #expect(await waitForAsync(timeout: 20) { controller.request("GET", "/readyz").status == 200 ? true : nil } == true)
        unlink(workspace.root + "/team-a.yaml")
        #expect(await waitForAsync(timeout: 20) { controller.metric("tokenctl_retirements_held") == 10 ? true : nil } == true)
        let readiness = controller.request("GET", "/readyz")
        #expect(readiness.status == 503 && readiness.body.contains("retirement guard"), "\(readiness.body)")
        #expect(try workspace.inventory().filter(\.revoked).isEmpty, "the controller revoked nothing")
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        #expect(controller.stderr.contains("plan held by the retirement guard"))
    }

    @Test func theControllerRefusesAnotherSetOfRoots() async throws {
        let workspace = try Self.appliedTwoTeams()
        defer { workspace.remove() }
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root + "/base.yaml", "-f", workspace.root + "/team-b.yaml",
                                                "--state-dir", workspace.state, "--interval", "1s", "--settle", "0s",
                                                "--allow-mass-retirement"],
                                               environment: ["TOKENCTL_LOG_LEVEL": "info"], scratch: workspace.root)
        #expect(await waitForAsync(timeout: 20) { controller.stderr.contains("manifest roots differ from the state's") ? true : nil } == true,
                "\(controller.stderr.suffix(1500))")
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        #expect(try workspace.inventory().filter(\.revoked).isEmpty, "even with mass retirement allowed, nothing was retired")
    }

    @Test func theControllerDoesNotActOnAHalfWrittenManifest() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        let names = (1...40).map { "svc-\($0)" }
        let full = ManifestText.header() + Self.tokens(names)
        workspace.write(full)
        #expect(try workspace.apply(at: 0).status == 0)
        let issued = try workspace.inventory().count
        // A generous retirement limit, so that only the settle time stands between a torn read and a mass retirement.
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1s", "--settle", "3s",
                                                "--retire-limit", "100", "--listen", "127.0.0.1:0"],
                                               environment: ["TOKENCTL_LOG_LEVEL": "info"], scratch: workspace.root)
        try controller.waitUntilListening()
        #expect(await waitForAsync(timeout: 20) { controller.request("GET", "/readyz").status == 200 ? true : nil } == true)
        // Rewritten in place, identical content, in two halves 2.5 s apart (as a slow copy might). The cut falls between
        // two documents, so the first half alone is a valid manifest set without the last 20 tokens.
        let bytes = Array(full.utf8)
        let cut = try #require(full.range(of: "---\napiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: svc-21,"))
        let half = full.utf8.distance(from: full.startIndex, to: cut.lowerBound)
        let handle = try #require(FileHandle(forWritingAtPath: workspace.root + "/tokens.yaml"))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: bytes[..<half])
        try await Task.sleep(nanoseconds: 2_500_000_000)
        try handle.write(contentsOf: bytes[half...])
        try handle.close()
        try await Task.sleep(nanoseconds: 6_000_000_000)
        #expect(try workspace.inventory().filter(\.revoked).isEmpty, "no token was retired from the torn read")
        #expect(try workspace.inventory().count == issued, "no token was issued again")
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        #expect(controller.stderr.contains("waiting for them to settle"))
    }
}

/// A `-f` path written inside the working directory cannot lead out of it through a link anywhere along it.
@Suite struct ManifestPathTests {
    @Test func aPathThroughALinkOutOfTheWorkingDirectoryIsRefused() throws {
        let root = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let secretLine = "DATABASE_URL=postgres://app:hunter4-canary@db/prod"
        try FileManager.default.createDirectory(atPath: root + "/repo", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/elsewhere/prod", withIntermediateDirectories: true)
        BinaryRunner.write(secretLine + "\n", to: root + "/elsewhere/prod/app.yaml")
        try FileManager.default.createSymbolicLink(atPath: root + "/repo/manifests", withDestinationPath: root + "/elsewhere")
        for path in ["manifests/", "manifests/prod", "./manifests/prod/", "manifests/prod/app.yaml"] {
            let outcome = try BinaryRunner.runProgram("/bin/sh", ["-c", "cd \"$1\" && exec \"$0\" validate -f \"$2\"", BinaryRunner.executable,
                                                                  root + "/repo", path])
            #expect(outcome.status == 1, "\(path): \(outcome.stdout)\(outcome.stderr)")
            #expect(outcome.stderr.contains("symbolic link") && !outcome.stderr.contains("hunter4-canary") && !outcome.stdout.contains("hunter4"),
                    "\(path): \(outcome.stderr)")
        }
    }
}
