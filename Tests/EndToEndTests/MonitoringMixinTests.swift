import Foundation
import TestSupport
import Testing
import TokenctlModel

/// The monitoring mixin in Examples/monitoring against Debian's real `promtool`, `prometheus` and
/// `prometheus-alertmanager`, and the controller's real /metrics.
@Suite(.serialized) struct MonitoringMixinTests {
    static let mixin = BinaryRunner.packageRoot.appendingPathComponent("Examples/monitoring").path
    static let promtool = "/usr/bin/promtool"

    /// The builtin issuer, a token that rotates, and a permanent one whose exception runs out in three days.
    static func manifests(now: Date = Date()) -> String {
        let exceptionEnds = Timestamp(secondsSinceEpoch: Int64(now.timeIntervalSince1970) + 3 * 86_400)
        return ManifestText.header(dotenv: false) + """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: api, namespace: apps, owner: team-apps}
            spec:
              issuer: local
              scopes: [read]
              lifespan: 90d
              rotation: {every: 30d, overlap: 1d}
              deliverTo: [{store: vault, key: apps/api}]
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: legacy-batch, namespace: apps, owner: team-legacy}
            spec:
              issuer: local
              scopes: [read]
              lifespan: never
              exception: {reason: partner cannot rotate, approvedBy: security-team, ticket: SEC-42, expires: "\(exceptionEnds)"}
              deliverTo: [{store: vault, key: apps/legacy-batch}]

            """
    }

    /// A controller over `manifests()` with every optional metric on, listening on a free port.
    static func controller(in workspace: ApplyCommandTests.Workspace) throws -> ControllerProcess {
        workspace.write(manifests())
        let process = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1m", "--refresh",
                                             "--listen", "127.0.0.1:0", "--metrics-per-token", "--serve-introspection"],
                                            scratch: workspace.root)
        try process.waitUntilListening()
        let issued = waitFor(timeout: 30) { process.metric("tokenctl_credentials_issued_total").flatMap { $0 >= 2 ? true : nil } }
        #expect(issued == true, "the controller did not issue both tokens; stderr:\n\(process.stderr)")
        return process
    }

    /// Every `tokenctl_…` series name the rules and the dashboard query.
    static func metricNamesUsedByTheMixin() throws -> Set<String> {
        let text = try String(contentsOfFile: mixin + "/alerts.yaml", encoding: .utf8)
            + String(contentsOfFile: mixin + "/dashboard.json", encoding: .utf8)
        let names = text.matches(of: /tokenctl_[a-z_]+/).map { String($0.output) }
        return Set(names.map { $0.hasSuffix("_bucket") ? String($0.dropLast("_bucket".count)) : $0 })
    }

    @Test func alertRulesAreValidAndPassTheirUnitTests() throws {
        let check = try BinaryRunner.runProgram(Self.promtool, ["check", "rules", Self.mixin + "/alerts.yaml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("SUCCESS: 11 rules found"), "\(check.stdout)")
        let test = try BinaryRunner.runProgram("/bin/sh", ["-c", "cd \"$0\" && exec \"$1\" test rules alerts_test.yaml", Self.mixin, Self.promtool])
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
        #expect(test.stdout.contains("SUCCESS"), "\(test.stdout)")
    }

    @Test func everyDashboardQueryIsValidPromQL() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.mixin + "/dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= panels.count)
        // Each query becomes a recording rule, so that promtool parses it; the dashboard's $job variable becomes a regex.
        let rules = "groups:\n  - name: dashboard\n    rules:\n" + expressions.enumerated().map { index, expression in
            let query = expression.replacingOccurrences(of: "$job", with: ".*").replacingOccurrences(of: "'", with: "''")
            return "      - record: dashboard:query\(index)\n        expr: '\(query)'\n"
        }.joined()
        let directory = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        BinaryRunner.write(rules, to: directory + "/dashboard-rules.yaml")
        let check = try BinaryRunner.runProgram(Self.promtool, ["check", "rules", directory + "/dashboard-rules.yaml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("SUCCESS: \(expressions.count) rules found"), "\(check.stdout)")
    }

    @Test func theControllersMetricsPassPromtoolAndCarryEverySeriesTheMixinUses() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let controller = try Self.controller(in: workspace)
        let metrics = controller.request("GET", "/metrics").body
        BinaryRunner.write(metrics, to: workspace.root + "/metrics.txt")
        let lint = try BinaryRunner.runProgram("/bin/sh", ["-c", "exec \"$0\" check metrics < \"$1\"", Self.promtool, workspace.root + "/metrics.txt"])
        #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool check metrics:\n\(lint.stdout)\(lint.stderr)")
        let exposed = Set(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
            $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        }.map { $0.replacing(/_(bucket|sum|count)$/, with: "") })
        let missing = try Self.metricNamesUsedByTheMixin().subtracting(exposed)
        #expect(missing.isEmpty, "the mixin queries series the controller does not export: \(missing.sorted())")
        // The permanent token is the one nothing rotates; its exception's end is its expiry.
        #expect(metrics.contains(#"tokenctl_tokens_expiring{issuer="local",within="7d",rotation="none"} 1"#))
        #expect(metrics.contains(#"tokenctl_tokens_expiring{issuer="local",within="1d",rotation="none"} 0"#))
        #expect(metrics.contains(#"tokenctl_token_expiration_timestamp_seconds{namespace="apps",name="legacy-batch",issuer="local",rotation="none"}"#))
        #expect(metrics.contains(#"tokenctl_credentials_issued_total{issuer="local",owner="team-legacy"} 1"#))
        #expect(metrics.contains(#"tokenctl_ghosts{issuer="local"} 0"#))
    }

    @Test func perTokenMetricsNeedAnEndpoint() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(Self.manifests())
        let outcome = try workspace.run(["reconcile", "--watch", "-f", "DIR", "--metrics-per-token"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("--metrics-per-token needs --listen HOST:PORT."), "\(outcome.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workspace.state), "a refused command changed nothing")
    }

    @Test func anExpiryAlertReachesAWebhookThroughPrometheusAndAlertmanager() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let controller = try Self.controller(in: workspace)
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        // The shipped rules with second-scale durations, so that the test takes seconds, not the rules' minutes.
        let rules = try String(contentsOfFile: Self.mixin + "/alerts.yaml", encoding: .utf8).replacing(/for: [0-9]+m/, with: "for: 1s")
        BinaryRunner.write(rules, to: workspace.root + "/alerts.yaml")
        let stack = try MonitoringStack.start(targets: [controller.address], rules: workspace.root + "/alerts.yaml",
                                              webhook: receiver.url + "/alerts")
        defer { stack.stop() }
        let delivered = waitFor(timeout: 90) {
            receiver.requests.first { $0.body.contains(#""alertname":"TokenctlTokensExpiringWithoutRotation""#) }
        }
        let request = try #require(delivered, "no expiry alert reached the receiver; Prometheus alerts: \(stack.prometheus("/api/v1/alerts") ?? "-")\n\(stack.logs)")
        #expect(request.method == "POST" && request.path == "/alerts")
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
        let alerts = try #require(payload["alerts"] as? [[String: Any]])
        let expiry = try #require(alerts.first { ($0["labels"] as? [String: String])?["alertname"] == "TokenctlTokensExpiringWithoutRotation" })
        let labels = try #require(expiry["labels"] as? [String: String])
        #expect(labels["issuer"] == "local" && labels["job"] == "tokenctl" && labels["severity"] == "warning")
        let annotations = try #require(expiry["annotations"] as? [String: String])
        #expect(annotations["summary"] == "1 token(s) of issuer local expire within 7 days and nothing will rotate them.")
        // Three days out is not one: the paging alert stays quiet.
        #expect(!receiver.requests.contains { $0.body.contains("TokenctlTokensExpiringWithoutRotationSoon") })
    }
}
