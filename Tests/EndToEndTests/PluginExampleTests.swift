import Foundation
import TestSupport
import Testing

/// `Examples/plugins/*` as their READMEs walk through them, on the tests' own servers: each example directory is
/// copied, pointed at the server's port, checked with `plugin check`, applied, and refreshed.
@Suite(.serialized) struct PluginExampleTests {
    /// A copy of `Examples/plugins/NAME` with `replacements` made in its tokens.yaml.
    static func copy(_ name: String, replacing replacements: [String: String]) throws -> ApplyCommandTests.Workspace {
        let workspace = ApplyCommandTests.Workspace()
        let source = BinaryRunner.packageRoot.appendingPathComponent("Examples/plugins/\(name)").path
        for file in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: workspace.root + "/" + file)
        }
        var text = try String(contentsOfFile: workspace.root + "/tokens.yaml", encoding: .utf8)
        for (old, new) in replacements { text = text.replacingOccurrences(of: old, with: new) }
        workspace.write(text)
        return workspace
    }

    /// The README's commands: plugin check, apply, and a refreshed plan that finds nothing to do.
    static func walkThrough(_ workspace: ApplyCommandTests.Workspace, issuer: String, environment: [String: String]) throws {
        let checked = try workspace.run(["plugin", "check", "-f", "DIR", issuer], environment: environment)
        #expect(checked.status == 0 && checked.stdout.contains("Every step passed."), "\(checked.stdout)\(checked.stderr)")
        let applied = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: environment)
        #expect(applied.status == 0 && applied.stdout.contains("0 failed"), "\(applied.stdout)\(applied.stderr)")
        let refreshed = try workspace.run(["plan", "-f", "DIR", "--refresh"], environment: environment)
        #expect(refreshed.status == 0 && refreshed.stdout.contains("No changes"), "\(refreshed.stdout)\(refreshed.stderr)")
    }

    @Test func redisACLExample() throws {
        let redis = try RedisTestServer.start()
        defer { redis.stop() }
        let workspace = try Self.copy("redis-acl", replacing: [#"port: "6379""#: #"port: "\#(redis.port)""#])
        defer { workspace.remove() }
        try Self.walkThrough(workspace, issuer: "cache", environment: ["REDIS_ADMIN_PASSWORD": redis.adminPassword])
        let secret = try workspace.run(["secret", "get", "-f", "DIR", "shop/cart"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try redis.cli(user: "tokenctl-shop.cart", password: secret, ["SET", "cart:42", "1"]).stdout.contains("OK"))
        #expect(try redis.cli(user: "tokenctl-shop.cart", password: secret, ["GET", "session:1"]).stdout.contains("NOPERM"))
    }

    @Test func rabbitMQUsersExample() throws {
        let rabbit = try RabbitMQTestServer.shared()
        let prefix = "tkx\(UUID().uuidString.prefix(6).lowercased())-"
        let port = rabbit.managementURL.split(separator: ":").last.map(String.init) ?? ""
        let workspace = try Self.copy("rabbitmq-users", replacing: ["127.0.0.1:15672": "127.0.0.1:\(port)",
                                                                    #"amqpPort: "5672""#: #"amqpPort: "\#(rabbit.amqpPort)""#,
                                                                    #"prefix: "tokenctl-""#: #"prefix: "\#(prefix)""#])
        defer { workspace.remove() }
        try Self.walkThrough(workspace, issuer: "broker", environment: ["RABBITMQ_ADMIN_PASSWORD": rabbit.adminPassword])
        let secret = try workspace.run(["secret", "get", "-f", "DIR", "shop/order-events"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try rabbit.authenticates(user: "\(prefix)shop.order-events.v1", password: secret))
        _ = try rabbit.api("/api/users/\(prefix)shop.order-events.v1", method: "DELETE")
    }

    @Test func dockerCredentialPassExample() throws {
        let pass = try CredentialHelperStoreTests.PassStore()
        defer { pass.remove() }
        let workspace = try Self.copy("docker-credential-pass", replacing: [:])
        defer { workspace.remove() }
        let applied = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: pass.environment)
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        let listed = try BinaryRunner.runProgram("/usr/bin/docker-credential-pass", ["list"], environment: pass.environment)
        #expect(listed.stdout.contains(#""ci/registry-push":"tokenctl""#), "\(listed.stdout)")
        let secret = try workspace.run(["secret", "get", "-f", "DIR", "ci/registry-push"], environment: pass.environment)
        #expect(secret.status == 0 && secret.stdout.hasPrefix("tkc_"), "\(secret.stderr)")
    }
}
