import Testing
import TokenctlManifest
import TokenctlModel

/// The Notifier kind: decoding, defaults and every mistake reported at its line and column.
@Suite struct NotifierTests {
    static func notifier(_ spec: String, name: String = "security") -> String {
        "apiVersion: tokenctl/v1\nkind: Notifier\nmetadata: {name: \(name)}\nspec:\n" + spec
    }

    @Test func decodesEveryField() throws {
        let result = Fixture.load(Self.notifier("""
              url: env:HOOK_URL
              format: alertmanager
              signingKey: file:/run/secrets/hmac
              timeout: 5s
              selector: {owners: ["team-*"], namespaces: [payments]}
              events:
                expiring: {leadTimes: [1d, 14d, 3d]}
                failing: {after: 2h}
                ghost: {}
                unused: {after: 45d}
                policyViolation: {}
                rateLimited: {}
            """))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.message))")
        let notifier = try #require(result.manifests.notifiers.first)
        #expect(notifier.url == .environment("HOOK_URL") && notifier.format == .alertmanager)
        #expect(notifier.signingKey == .file("/run/secrets/hmac") && notifier.timeout.seconds == 5)
        #expect(notifier.selector.selects(owner: "team-payments", namespace: "payments"))
        #expect(!notifier.selector.selects(owner: "team-payments", namespace: "platform"))
        #expect(!notifier.selector.selects(owner: "ops", namespace: "payments"))
        #expect(!notifier.selector.selects(owner: nil, namespace: nil), "an event about no token does not match an owner selector")
        // Lead times come out longest first, whatever order they were written in.
        #expect(notifier.events.expiring?.map(\.seconds) == [14 * 86_400, 3 * 86_400, 86_400])
        #expect(notifier.events.failingAfter?.seconds == 7_200 && notifier.events.unusedAfter?.seconds == 45 * 86_400)
        #expect(notifier.events.ghost && notifier.events.policyViolation && notifier.events.rateLimited)
    }

    @Test func emptyEventSettingsTakeTheDefaults() throws {
        let result = Fixture.load(Self.notifier("  url: env:HOOK_URL\n  events: {expiring: {}, failing: {}, unused: {}}\n"))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.message))")
        let notifier = try #require(result.manifests.notifiers.first)
        #expect(notifier.format == .json && notifier.timeout == Notifier.defaultTimeout && notifier.signingKey == nil)
        #expect(notifier.events.expiring == Notifier.Events.defaultLeadTimes)
        #expect(notifier.events.failingAfter == Notifier.Events.defaultFailingAfter)
        #expect(notifier.events.unusedAfter == Notifier.Events.defaultUnusedAfter)
        #expect(!notifier.events.ghost && !notifier.events.policyViolation && !notifier.events.rateLimited)
        #expect(notifier.selector.selects(owner: nil, namespace: nil))
    }

    @Test func aLiteralWebhookURLIsRefusedLikeAnySecretAndNeverEchoed() {
        let url = "https://hooks.slack.com/services/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"
        let result = Fixture.load(Self.notifier("  url: \(url)\n  events: {ghost: {}}\n"))
        // The secret scanner knows a Slack webhook when it sees one; any other literal is refused as not a reference.
        #expect(result.found == [Found(file: "t.yaml", line: 5, column: 8, code: "literal-secret")])
        let plain = Fixture.load(Self.notifier("  url: https://example.com/hook\n  events: {ghost: {}}\n"))
        #expect(plain.found == [Found(file: "t.yaml", line: 5, column: 8, code: "bad-reference")])
        #expect(plain.messages("bad-reference").first?.contains("env:NAME or file:PATH") == true)
        #expect(!result.diagnostics.contains { $0.message.contains("cAnArY") }, "the URL must not be echoed")
        #expect(result.manifests.notifiers.isEmpty)
    }

    @Test(arguments: [
        ("  url: env:U\n  events: {ghosts: {}}\n", 6, 12, "unknown-field", "unknown field 'ghosts' in Notifier events (did you mean 'ghost'?)"),
        ("  url: env:U\n  selector: {owner: [a]}\n  events: {ghost: {}}\n", 6, 14, "unknown-field",
         "unknown field 'owner' in a Notifier selector (did you mean 'owners'?)"),
        ("  url: env:U\n  events: {expiring: {leadTimes: [3d, 0s]}}\n", 6, 39, "bad-value", "lead times must be longer than 0s and at most 3650d"),
        ("  url: env:U\n  timeout: 1h\n  events: {ghost: {}}\n", 6, 12, "bad-value", "'timeout' must be at most 5m, found '1h'"),
        ("  url: env:U\n  events: {expiring: {leadTimes: []}}\n", 6, 34, "bad-value", "'leadTimes' is empty"),
        ("  url: env:U\n  events: {failing: {after: soon}}\n", 6, 29, "bad-duration", "invalid duration 'soon' for 'after'"),
        ("  url: env:U\n  format: teams\n  events: {ghost: {}}\n", 6, 11, "bad-value", "invalid value 'teams' for 'format'"),
        ("  url: env:U\n  events: {}\n", 5, 3, "bad-value", "a Notifier with no events sends nothing"),
        ("  events: {ghost: {}}\n", 5, 3, "missing-field", "missing required field 'url' in Notifier spec"),
        ("  url: env:U\n", 5, 3, "missing-field", "missing required field 'events' in Notifier spec"),
    ] as [(String, Int, Int, String, String)])
    func mistakesAreReportedWhereTheyAre(_ spec: String, _ line: Int, _ column: Int, _ code: String, _ message: String) {
        let result = Fixture.load(Self.notifier(spec))
        #expect(result.found == [Found(file: "t.yaml", line: line, column: column, code: code)], "\(result.diagnostics.map(\.message))")
        #expect(result.diagnostics.first?.message.hasPrefix(message) == true, "\(result.diagnostics.map(\.message))")
        #expect(result.manifests.notifiers.isEmpty)
    }

    @Test func namesAreUniqueAndSorted() {
        let result = Fixture.load([
            "a.yaml": Self.notifier("  url: env:A\n  events: {ghost: {}}\n", name: "zeta") + "\n---\n"
                + Self.notifier("  url: env:B\n  events: {ghost: {}}\n", name: "alpha"),
            "b.yaml": Self.notifier("  url: env:C\n  events: {ghost: {}}\n", name: "zeta"),
        ])
        #expect(result.diagnostics.map(\.code) == ["duplicate-name"], "\(result.diagnostics.map(\.message))")
        #expect(result.manifests.notifiers.map(\.metadata.name) == ["alpha", "zeta"])
    }
}

/// `Policy.spec.maxIssued`, the creation-rate limit.
@Suite struct IssueRateLimitDecodingTests {
    static func policy(_ line: String) -> String {
        "apiVersion: tokenctl/v1\nkind: Policy\nmetadata: {name: rates}\nspec:\n  maxIssued: \(line)\n"
    }

    @Test func decodesAndDefaultsToOwners() throws {
        let result = Fixture.load(Self.policy("{count: 100, per: 1h}"))
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.message))")
        let limit = try #require(result.manifests.policies.first { $0.metadata.name == "rates" }?.maxIssued)
        #expect(limit == IssueRateLimit(count: 100, per: TokenDuration(seconds: 3_600), by: .owner))
        let byIssuer = Fixture.load(Self.policy("{count: 5, per: 1d, by: issuer}"))
        #expect(byIssuer.manifests.policies.first { $0.metadata.name == "rates" }?.maxIssued?.by == .issuer)
    }

    @Test(arguments: [
        ("{count: 0, per: 1h}", 5, 22, "bad-value", "'count' must be a whole number above 0, found '0'"),
        ("{count: many, per: 1h}", 5, 22, "bad-value", "'count' must be a whole number above 0, found 'many'"),
        ("{count: 5}", 5, 14, "missing-field", "missing required field 'per' in 'maxIssued'"),
        ("{count: 5, per: 1h, by: team}", 5, 38, "bad-value", "invalid value 'team' for 'by'"),
        ("{count: 5, per: 1h, every: 1h}", 5, 34, "unknown-field", "unknown field 'every' in 'maxIssued'"),
    ] as [(String, Int, Int, String, String)])
    func mistakesAreReportedWhereTheyAre(_ line: String, _ row: Int, _ column: Int, _ code: String, _ message: String) {
        let result = Fixture.load(Self.policy(line))
        #expect(result.found == [Found(file: "t.yaml", line: row, column: column, code: code)], "\(result.diagnostics.map(\.message))")
        #expect(result.diagnostics.first?.message.hasPrefix(message) == true, "\(result.diagnostics.map(\.message))")
    }
}
