import Foundation
import Testing
import TokenctlModel

/// A policy violation holds only the tokens it concerns: the rest of the plan proceeds, and the run exits 3.
@Suite struct PolicyHoldTests {
    typealias Workspace = ApplyCommandTests.Workspace

    /// A permanent token whose exception expires `expires` seconds after t0.
    static func permanent(_ name: String, expires seconds: Int64) -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: apps, owner: team-a}
        spec:
          issuer: local
          scopes: [orders:read]
          lifespan: never
          exception: {reason: legacy batch job, approvedBy: carol, ticket: SEC-77, expires: "\(ApplyCommandTests.at(seconds))"}
          deliverTo: [{store: vault, key: apps/\(name)}]

        """
    }

    static func tokens(_ names: [String]) -> String {
        names.map { ApplyCommandTests.token($0, lifespan: "90d", every: "30d", overlap: "1d") }.joined()
    }

    @Test func anExpiredExceptionHoldsItsTokenAndEveryOtherChangeProceeds() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(ManifestText.header() + Self.tokens(["web"]) + Self.permanent("batch", expires: 86_400))
        let first = try workspace.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        // Secrets are read as of an hour in, while the exceptions still hold (secret get refuses manifests that violate
        // policy, and the real clock passes the exceptions' expiry a day after the tests' t0).
        func secret(_ name: String) throws -> String {
            try workspace.run(at: ApplyCommandTests.at(3_600), ["secret", "get", "-f", "DIR", "apps/\(name)"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let batch = try secret("batch")
        #expect(!batch.isEmpty)

        // Two days later batch's exception has expired; two tokens are added meanwhile, one of them permanent with an
        // exception that has expired too: only the other may be issued.
        workspace.write(ManifestText.header() + Self.tokens(["web", "api"]) + Self.permanent("batch", expires: 86_400)
                        + Self.permanent("late", expires: 86_400))
        let plan = try workspace.run(["plan", "-f", "DIR", "--at", ApplyCommandTests.at(2 * 86_400)])
        #expect(plan.status == 3, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("+ issue     apps/api v1"), "\(plan.stdout)")
        #expect(plan.stdout.contains("! held      apps/batch"), "\(plan.stdout)")
        #expect(plan.stdout.contains("! held      apps/late") && plan.stdout.contains("no issue until it complies"), "\(plan.stdout)")
        #expect(!plan.stdout.contains("issue     apps/late"), "\(plan.stdout)")
        #expect(plan.stdout.contains("PolicyViolation: the exception for permanent token 'apps/batch' expired"), "\(plan.stdout)")
        #expect(plan.stdout.contains("Plan: 1 to issue, 2 held by policy."), "\(plan.stdout)")
        let json = try workspace.run(["plan", "-f", "DIR", "--json", "--at", ApplyCommandTests.at(2 * 86_400)])
        #expect(json.status == 3 && json.stdout.contains("\"held\""), "\(json.stdout)")

        let applied = try workspace.apply(at: 2 * 86_400)
        #expect(applied.status == 3, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stdout.contains("Apply complete: 1 change applied, 0 failed."), "\(applied.stdout)")
        #expect(applied.stderr.contains("2 tokens held by policy got no new credential"), "\(applied.stderr)")
        #expect(try workspace.inventory().count == 3, "web, batch and api: nothing for the held new token")
        #expect(!(try secret("api")).isEmpty, "the other token was issued")
        #expect(try secret("batch") == batch, "the held token was left as it was")
    }

    @Test func violationsAreShownTogetherWithErrors() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        // One document with an error (an unknown field), one token that breaks policy: both are reported in one run.
        workspace.write(ManifestText.header() + Self.tokens(["web"]) + Self.permanent("batch", expires: -86_400)
                        + "---\napiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: bad, namespace: apps, owner: team-a}\n"
                        + "spec: {issuer: local, scopes: [a:b], lifespan: 1d, colour: red}\n")
        let validated = try workspace.run(["validate", "-f", "DIR", "--at", ApplyCommandTests.at(0)])
        #expect(validated.status == 1)
        #expect(validated.stderr.contains("colour") || validated.stdout.contains("colour"), "\(validated.stdout)\(validated.stderr)")
        #expect((validated.stdout + validated.stderr).contains("exception for permanent token 'apps/batch' expired"),
                "\(validated.stdout)\(validated.stderr)")
        #expect(validated.stdout.contains("1 error, 1 policy violation"), "\(validated.stdout)")
    }

    @Test func aRunningControllerNoticesAnExceptionExpire() async throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        // On the real clock: the exception expires 12 s after the controller starts, with no change to the files.
        let expires = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) + 12)
        workspace.write(ManifestText.header() + Self.tokens(["web"])
                        + Self.permanent("batch", expires: expires.secondsSinceEpoch - ApplyCommandTests.t0.secondsSinceEpoch))
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1s", "--settle", "0s",
                                                "--listen", "127.0.0.1:0"], environment: ["TOKENCTL_LOG_LEVEL": "info"],
                                               scratch: workspace.root)
        try controller.waitUntilListening()
        #expect(await waitForAsync(timeout: 10) { controller.stderr.contains("reconcile pass applied changes") ? true : nil } == true,
                "the first pass issues both tokens while the exception holds: \(controller.stderr.suffix(1500))")
        #expect(!controller.stderr.contains("policy violation"))
        #expect(await waitForAsync(timeout: 30) { controller.stderr.contains("policy violation: token held") ? true : nil } == true,
                "\(controller.stderr.suffix(2000))")
        #expect(controller.stderr.contains("apps/batch"))
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        #expect(try workspace.inventory().count == 2, "both tokens were issued while the exception held")
    }
}
