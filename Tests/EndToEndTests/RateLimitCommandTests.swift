import Foundation
import Testing

/// `maxIssued` through the real binary: the excess is held and plan/apply exit 3, the rest is issued, and an operator
/// lifts the limit for one apply with an audited reason.
@Suite struct RateLimitCommandTests {
    static func manifests(tokens: Int) -> String {
        ManifestText.header(dotenv: false) + """
            ---
            apiVersion: tokenctl/v1
            kind: Policy
            metadata: {name: rates}
            spec:
              maxIssued: {count: 3, per: 1h}
            ---
            apiVersion: tokenctl/v1
            kind: Notifier
            metadata: {name: security}
            spec:
              url: env:HOOK_URL
              events: {rateLimited: {}}

            """ + (1...tokens).map { ApplyCommandTests.token("bot-\($0)", lifespan: "90d", every: "30d", overlap: "1d", stores: ["vault"]) }.joined()
    }

    @Test func theExcessIsHeldUntilTheWindowAllowsOrAnOperatorLiftsTheLimit() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests(tokens: 5))
        let plan = try workspace.run(["plan", "-f", "DIR"])
        #expect(plan.status == 3, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("creation-rate limit of policy 'rates' reached: owner team-apps may get 3 new credentials per 1h"))
        #expect(plan.stdout.contains("Plan: 3 to issue") && plan.stdout.contains("2 held by policy"), "\(plan.stdout)")

        let first = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(first.status == 3, "\(first.stdout)\(first.stderr)")
        #expect(try workspace.recordedTokenNames() == ["bot-1", "bot-2", "bot-3"])
        let notice = try workspace.run(["notices", "-f", "DIR", "--dry-run"])
        #expect(notice.stdout.contains("rateLimited") && notice.stdout.contains("2 new tokens held (apps/bot-4, apps/bot-5)"), "\(notice.stdout)")

        // The window still holds them; lifting needs a reason, which the audit log keeps.
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 3)
        let noReason = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--lift-rate-limits"])
        #expect(noReason.status != 0 && noReason.stderr.contains("--lift-rate-limits needs --reason"))
        let lifted = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--lift-rate-limits", "--reason", "SEC-9 migration of the bots"])
        #expect(lifted.status == 0, "\(lifted.stdout)\(lifted.stderr)")
        #expect(try workspace.recordedTokenNames() == (1...5).map { "bot-\($0)" })
        let audit = try workspace.run(["audit", "-f", "DIR", "--json"]).stdout
        #expect(audit.contains("creation-rate limits lifted for this run") && audit.contains("SEC-9 migration of the bots"))
    }
}

extension ApplyCommandTests.Workspace {
    /// The names of the tokens in the state, sorted.
    func recordedTokenNames() throws -> [String] {
        let status = try run(["status", "-f", "DIR", "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        let tokens = (object?["tokens"] as? [[String: Any]]) ?? []
        return tokens.compactMap { ($0["token"] as? String)?.split(separator: "/").last.map(String.init) }.sorted()
    }

    /// The active version of a token, from `status --json`.
    func version(of token: String) throws -> Int? {
        let status = try run(["status", "-f", "DIR", "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        let tokens = (object?["tokens"] as? [[String: Any]]) ?? []
        return tokens.first { $0["token"] as? String == token }?["version"] as? Int
    }
}
