import Foundation
import TestSupport
import Testing

/// The RabbitMQ reference plugin (`Examples/plugins/rabbitmq-users`) driven by tokenctl against a real
/// `rabbitmq-server` with its management plugin: issue, overlap rotation with versioned users, retirement, ghosts,
/// crash repair, and a canary search of every output and the broker's logs.
@Suite(.serialized) struct RabbitMQPluginTests {
    static let plugin = BinaryRunner.packageRoot.appendingPathComponent("Examples/plugins/rabbitmq-users/tokenctl-rabbitmq-users").path

    struct Setup {
        let rabbit: RabbitMQTestServer
        let workspace = ApplyCommandTests.Workspace()
        /// Each test's users have a prefix of their own on the shared broker.
        let prefix = "tk\(UUID().uuidString.prefix(6).lowercased())-"
        var environment: [String: String] { ["RABBITMQ_ADMIN_PASSWORD": rabbit.adminPassword] }

        init() throws {
            rabbit = try RabbitMQTestServer.shared()
        }

        func write(tokens: [String], command: String = RabbitMQPluginTests.plugin) {
            var text = ManifestText.header(dotenv: false) + """
                ---
                apiVersion: tokenctl/v1
                kind: Issuer
                metadata: {name: broker}
                spec:
                  type: exec
                  ghosts: report
                  exec:
                    command: ["\(command)"]
                    config: {url: "\(rabbit.managementURL)", adminUser: guest, amqpPort: "\(rabbit.amqpPort)", prefix: "\(prefix)"}
                    secrets: {adminPassword: env:RABBITMQ_ADMIN_PASSWORD}

                """
            for name in tokens {
                text += """
                    ---
                    apiVersion: tokenctl/v1
                    kind: Token
                    metadata: {name: \(name), namespace: apps, owner: team-queues}
                    spec:
                      issuer: broker
                      scopes: ["permission:/:^$:^\(name)\\\\.:^\(name)\\\\.", "tag:monitoring"]
                      lifespan: 1h
                      rotation: {every: 40m, overlap: 10m}
                      deliverTo: [{store: vault, key: apps/\(name)}]

                    """
            }
            workspace.write(text)
        }

        func apply(at seconds: Int64, _ extra: [String: String] = [:]) throws -> BinaryRunner.Outcome {
            try workspace.run(at: ApplyCommandTests.at(seconds), ["apply", "-f", "DIR", "--auto-approve"],
                              environment: environment.merging(extra) { $1 })
        }

        func user(_ name: String, _ version: Int) -> String { "\(prefix)apps.\(name).v\(version)" }

        /// The names of this test's users on the broker.
        func users() throws -> [String] {
            let listed = try JSONSerialization.jsonObject(with: Data(try rabbit.api("/api/users").utf8)) as? [[String: Any]] ?? []
            return listed.compactMap { $0["name"] as? String }.filter { $0.hasPrefix(prefix) }.sorted()
        }
    }

    @Test func issueOverlapRotationRetirementGhostsAndNoSecretAnywhere() throws {
        let setup = try Setup()
        defer { setup.workspace.remove() }
        var outputs: [String] = []
        setup.write(tokens: ["orders", "billing"])
        let first = try setup.apply(at: 0)
        outputs.append(first.stdout + first.stderr)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let v1 = try setup.workspace.secret("orders")
        #expect(v1.hasPrefix("rmq_"))
        #expect(try setup.rabbit.authenticates(user: setup.user("orders", 1), password: v1))
        let permissions = try setup.rabbit.api("/api/users/\(setup.user("orders", 1))/permissions")
        #expect(permissions.contains(#""write":"^orders\\."#), "scopes are vhost permissions: \(permissions)")

        let rotated = try setup.apply(at: 41 * 60)
        outputs.append(rotated.stdout + rotated.stderr)
        let v2 = try setup.workspace.secret("orders")
        #expect(rotated.status == 0 && v2 != v1, "\(rotated.stdout)\(rotated.stderr)")
        #expect(try setup.rabbit.authenticates(user: setup.user("orders", 1), password: v1), "v1 still works in the overlap")
        #expect(try setup.rabbit.authenticates(user: setup.user("orders", 2), password: v2))

        let retired = try setup.apply(at: 52 * 60)
        outputs.append(retired.stdout + retired.stderr)
        #expect(!(try setup.users().contains(setup.user("orders", 1))), "v1's user is deleted after the overlap")
        #expect(!(try setup.rabbit.authenticates(user: setup.user("orders", 1), password: v1)))
        #expect(try setup.rabbit.authenticates(user: setup.user("orders", 2), password: v2))

        // A user made by hand under the prefix, without the marker tag, is a ghost: reported, never touched.
        _ = try setup.rabbit.api("/api/users/\(setup.prefix)handmade", method: "PUT", body: #"{"password":"handmade-pw-1","tags":""}"#)
        let refreshed = try setup.workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(53 * 60)],
                                                environment: setup.environment)
        outputs.append(refreshed.stdout + refreshed.stderr)
        #expect(refreshed.stdout.contains("ghost") && refreshed.stdout.contains("\(setup.prefix)handmade"), "\(refreshed.stdout)\(refreshed.stderr)")

        setup.write(tokens: ["orders"])
        let removed = try setup.apply(at: 54 * 60)
        outputs.append(removed.stdout + removed.stderr)
        #expect(try setup.users() == [setup.user("orders", 2), "\(setup.prefix)handmade"].sorted(), "billing's user is gone, the ghost stays")

        outputs.append(setup.rabbit.logs())
        #expect(setup.rabbit.logs().contains(setup.user("orders", 2)), "the broker's debug log this test searches must exist")
        for path in [".tokenctl/state.db", ".tokenctl/state.db-wal"] {
            if let data = FileManager.default.contents(atPath: setup.workspace.root + "/" + path) { outputs.append(String(decoding: data, as: UTF8.self)) }
        }
        for (index, canary) in [v1, v2].enumerated() {
            #expect(outputs.filter { $0.contains(canary) }.isEmpty, "secret \(index) found in an output, the state or the broker's logs")
        }
        _ = try setup.rabbit.api("/api/users/\(setup.prefix)handmade", method: "DELETE")
    }

    @Test func killedTokenctlOrPluginLeavesNoUserBehindAndNothingTwice() throws {
        let setup = try Setup()
        defer { setup.workspace.remove() }
        let wrapper = PluginWrapper.killedOnceAfterIssuing(Self.plugin, in: setup.workspace.root)
        setup.write(tokens: ["a", "b"], command: wrapper)
        let crashed = try setup.apply(at: 0)
        #expect(crashed.status == 1, "\(crashed.stdout)\(crashed.stderr)")
        #expect(try setup.users() == [setup.user("a", 1), setup.user("b", 1)], "the broker has the users the plugin made before it died")
        let repaired = try setup.apply(at: 60)
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
        // Found by idempotency key, deleted, and issued again as v2: one user per token, and each secret works.
        #expect(try setup.users() == [setup.user("a", 2), setup.user("b", 2)])
        for name in ["a", "b"] {
            #expect(try setup.rabbit.authenticates(user: setup.user(name, 2), password: try setup.workspace.secret(name)))
        }

        setup.write(tokens: ["a", "b", "c"])
        let killed = try setup.apply(at: 120, ["TOKENCTL_FAULT": "after-issue"])
        #expect(killed.signal == SIGKILL)
        let afterKill = try setup.apply(at: 180)
        #expect(afterKill.status == 0 && afterKill.stderr.contains("repaired"), "\(afterKill.stdout)\(afterKill.stderr)")
        #expect(try setup.users().filter { $0.contains(".c.") }.count == 1)
        #expect(try setup.rabbit.authenticates(user: setup.user("c", 1), password: try setup.workspace.secret("c"))
                || setup.rabbit.authenticates(user: setup.user("c", 2), password: try setup.workspace.secret("c")))
        let refreshed = try setup.workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(200)], environment: setup.environment)
        #expect(refreshed.stdout.contains("No changes"), "\(refreshed.stdout)\(refreshed.stderr)")
        setup.write(tokens: [])
        _ = try setup.workspace.run(at: ApplyCommandTests.at(240), ["apply", "-f", "DIR", "--auto-approve", "--allow-mass-retirement"],
                                    environment: setup.environment)
        #expect(try setup.users().isEmpty, "retiring everything deletes every user")
    }

    @Test func pluginCheckPassesAgainstTheBroker() throws {
        let setup = try Setup()
        defer { setup.workspace.remove() }
        setup.write(tokens: ["orders"])
        let checked = try setup.workspace.run(["plugin", "check", "-f", "DIR", "broker"], environment: setup.environment)
        #expect(checked.status == 0 && checked.stdout.contains("Every step passed."), "\(checked.stdout)\(checked.stderr)")
        #expect(try setup.users().isEmpty, "the throwaway user is deleted")
    }
}
