import Foundation
import Testing

/// Saved plans as a contract: they apply from any directory, and apply executes exactly what they list or refuses them.
@Suite struct SavedPlanTests {
    /// Runs tokenctl in `directory`, as a user whose shell is there.
    static func run(in directory: String, _ arguments: [String], environment: [String: String] = [:]) throws -> BinaryRunner.Outcome {
        try BinaryRunner.runProgram("/bin/sh", ["-c", "cd \"$1\" && shift && exec \"$0\" \"$@\"", BinaryRunner.executable, directory] + arguments,
                                    environment: environment)
    }

    /// `apps/web` applied at t0, and a plan saved for 31 days later, when it is due for rotation.
    static func planned() throws -> (ApplyCommandTests.Workspace, planFile: String) {
        let workspace = ApplyCommandTests.Workspace()
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        let planFile = workspace.root + "/plan.json"
        let plan = try workspace.run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(31 * 86_400), "--out", planFile])
        #expect(plan.status == 0 && plan.stdout.contains("~ rotate"), "\(plan.stdout)\(plan.stderr)")
        return (workspace, planFile)
    }

    static func edit(_ path: String, _ transform: (inout [String: Any]) -> Void) throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        transform(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    @Test func aPlanSavedWithRelativePathsAppliesFromAnotherDirectory() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        let plan = try Self.run(in: workspace.root, ["plan", "-f", ".", "--out", "plan.json"])
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        let saved = try String(contentsOfFile: workspace.root + "/plan.json", encoding: .utf8)
        #expect(saved.contains("\"stateDirectory\" : \"\(URL(fileURLWithPath: workspace.root).standardizedFileURL.path)/.tokenctl\""), "\(saved)")

        let applied = try Self.run(in: "/", ["apply", workspace.root + "/plan.json"])
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stdout.contains("Apply complete: 1 change applied, 0 failed."), "\(applied.stdout)")
        #expect(try workspace.inventory().count == 1)
        #expect(FileManager.default.fileExists(atPath: workspace.root + "/secrets.vault"), "the store beside the manifests, not in /")
    }

    @Test func aSealedPlanWithAnyChangedByteIsRefused() throws {
        let (workspace, planFile) = try Self.planned()
        defer { workspace.remove() }
        let text = try String(contentsOfFile: planFile, encoding: .utf8)
        #expect(text.contains("\"seal\" : \"hmac-sha256:"), "a plan made once a master key exists is sealed")
        // Even a change to what is only displayed is refused.
        try text.replacingOccurrences(of: "\"reason\" : \"RotationDue\"", with: "\"reason\" : \"Requested\"")
            .write(toFile: planFile, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: planFile, encoding: .utf8) != text)

        for command in [["show", planFile], ["apply", planFile]] {
            let refused = try workspace.run(at: ApplyCommandTests.at(31 * 86_400), command)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("was changed after tokenctl plan wrote it"), "\(command[0]): \(refused.stderr)")
        }
        #expect(try workspace.inventory().count == 1, "nothing was issued")
    }

    @Test func aPlanWhoseSealWasRemovedIsRefused() async throws {
        let (workspace, planFile) = try Self.planned()
        defer { workspace.remove() }
        let serial = try await workspace.recorded().serial
        // Someone turns the rotation into a retirement and drops the seal that would give it away.
        try Self.edit(planFile) { object in
            object["seal"] = nil
            guard var plan = object["plan"] as? [String: Any], var changes = plan["changes"] as? [[String: Any]] else { return }
            changes[0]["action"] = "retire"
            plan["changes"] = changes
            object["plan"] = plan
        }
        let refused = try workspace.run(at: ApplyCommandTests.at(31 * 86_400), ["apply", planFile])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("has no seal although a master key exists"), "\(refused.stderr)")
        #expect(try await workspace.recorded().serial == serial, "nothing was changed")
        #expect(try workspace.inventory().filter { !$0.revoked }.count == 1, "the token is not retired")

        // The unedited plan applies exactly what it lists. (An edited plan that keeps a valid seal cannot be made
        // without the master key; planning again at apply time would refuse it too: ReconcilerTests.)
        let fresh = try workspace.run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(31 * 86_400), "--out", planFile])
        #expect(fresh.status == 0)
        let applied = try workspace.run(at: ApplyCommandTests.at(31 * 86_400), ["apply", planFile])
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete: 1 change applied, 0 failed."), "\(applied.stdout)\(applied.stderr)")
    }

    @Test func aSealedPlanNeedsTheMasterKeyToBeChecked() throws {
        let (workspace, planFile) = try Self.planned()
        defer { workspace.remove() }
        let key = workspace.state + "/master.key"
        try FileManager.default.moveItem(atPath: key, toPath: key + ".away")
        let refused = try workspace.run(at: ApplyCommandTests.at(31 * 86_400), ["apply", planFile])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("is sealed with the master key, which is not available here"), "\(refused.stderr)")
        try FileManager.default.moveItem(atPath: key + ".away", toPath: key)
    }
}
