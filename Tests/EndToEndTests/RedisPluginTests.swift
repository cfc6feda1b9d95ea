import Foundation
import TestSupport
import Testing
import TokenctlModel

/// The Redis ACL reference plugin (`Examples/plugins/redis-acl`) driven by tokenctl against a real `redis-server`:
/// issue, overlap rotation, retirement, ghosts, crash repair, outages, and a canary search of every output, the
/// server's log and its MONITOR stream.
@Suite(.serialized) struct RedisPluginTests {
    static let plugin = BinaryRunner.packageRoot.appendingPathComponent("Examples/plugins/redis-acl/tokenctl-redis-acl").path

    struct Setup {
        let redis: RedisTestServer
        let workspace: ApplyCommandTests.Workspace
        var environment: [String: String] { ["REDIS_ADMIN_PASSWORD": redis.adminPassword] }

        init() throws {
            redis = try RedisTestServer.start()
            workspace = ApplyCommandTests.Workspace()
        }

        /// An exec issuer `cache` over the plugin (or `command`), and `tokens`.
        func write(tokens: [String], command: String = RedisPluginTests.plugin, extraEnvironment: [String] = []) {
            var text = ManifestText.header(dotenv: false) + """
                ---
                apiVersion: tokenctl/v1
                kind: Issuer
                metadata: {name: cache}
                spec:
                  type: exec
                  ghosts: report
                  exec:
                    command: ["\(command)"]
                    timeout: 10s
                    config: {host: 127.0.0.1, port: "\(redis.port)"}
                    secrets: {adminPassword: env:REDIS_ADMIN_PASSWORD}
                    environment: \(extraEnvironment)

                """
            for name in tokens {
                text += """
                    ---
                    apiVersion: tokenctl/v1
                    kind: Token
                    metadata: {name: \(name), namespace: apps, owner: team-cache}
                    spec:
                      issuer: cache
                      scopes: ["~cache:\(name):*", "+get", "+set"]
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

        func user(_ name: String) -> String { "tokenctl-apps.\(name)" }

        /// The SHA-256 password hashes of a user, from `ACL GETUSER`.
        func passwords(_ name: String) throws -> Int {
            let lines = try redis.cli(["ACL", "GETUSER", user(name)]).split(separator: "\n").map(String.init)
            guard let index = lines.firstIndex(of: "passwords") else { return 0 }
            return lines[(index + 1)...].prefix { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.count
        }

        func remove() {
            redis.stop()
            workspace.remove()
        }
    }

    @Test func issueOverlapRotationRetirementGhostsAndNoSecretAnywhere() throws {
        let setup = try Setup()
        defer { setup.remove() }
        try setup.redis.startMonitor()
        var outputs: [String] = []
        func record(_ outcome: BinaryRunner.Outcome) -> BinaryRunner.Outcome {
            outputs.append(outcome.stdout + outcome.stderr)
            return outcome
        }
        setup.write(tokens: ["orders", "reports"])
        let validated = record(try setup.workspace.run(["validate", "-f", "DIR"], environment: setup.environment))
        #expect(validated.status == 0, "\(validated.stderr)")

        let first = record(try setup.apply(at: 0))
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let v1 = try setup.workspace.secret("orders")
        #expect(v1.hasPrefix("rds_") && v1.count > 40)
        #expect(try setup.redis.authenticates(user: setup.user("orders"), password: v1))
        #expect(try setup.redis.cli(["ACL", "GETUSER", setup.user("orders")]).contains("~cache:orders:*"), "scopes are ACL rules")
        let denied = try setup.redis.cli(user: setup.user("orders"), password: v1, ["GET", "cache:reports:x"]).stdout
        #expect(denied.contains("NOPERM"), "a key outside the token's pattern is refused: \(denied)")

        // 41 minutes on: the rotation issues v2 as a second password; both authenticate during the overlap.
        let rotated = record(try setup.apply(at: 41 * 60))
        #expect(rotated.status == 0 && rotated.stdout.contains("rotate"), "\(rotated.stdout)\(rotated.stderr)")
        let v2 = try setup.workspace.secret("orders")
        #expect(v2 != v1)
        #expect(try setup.passwords("orders") == 2)
        #expect(try setup.redis.authenticates(user: setup.user("orders"), password: v1), "the old version still works in the overlap")
        #expect(try setup.redis.authenticates(user: setup.user("orders"), password: v2))

        // After the overlap, v1 is removed by its hash; only v2 authenticates.
        let retired = record(try setup.apply(at: 52 * 60))
        #expect(retired.status == 0, "\(retired.stdout)\(retired.stderr)")
        #expect(try setup.passwords("orders") == 1)
        #expect(!(try setup.redis.authenticates(user: setup.user("orders"), password: v1)), "the old version is revoked")
        #expect(try setup.redis.authenticates(user: setup.user("orders"), password: v2))

        // A user made by hand under the plugin's prefix is a ghost: reported, never touched.
        _ = try setup.redis.cli(["ACL", "SETUSER", setup.user("intruder"), "on", "#" + String(repeating: "ab", count: 32), "~*", "+@all"])
        let refreshed = record(try setup.workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(53 * 60)],
                                                       environment: setup.environment))
        #expect(refreshed.stdout.contains("ghost") && refreshed.stdout.contains(setup.user("intruder")), "\(refreshed.stdout)\(refreshed.stderr)")

        // Removing a token from the manifests retires it: its user is gone from Redis.
        setup.write(tokens: ["orders"])
        let removed = record(try setup.apply(at: 54 * 60))
        #expect(removed.status == 0, "\(removed.stdout)\(removed.stderr)")
        #expect(try setup.redis.cli(["ACL", "USERS"]).split(separator: "\n").contains { $0 == setup.user("reports") } == false)
        #expect(try setup.redis.cli(["ACL", "USERS"]).contains(setup.user("intruder")), "the ghost is left alone")
        for arguments in [["status", "-f", "DIR"], ["audit", "-f", "DIR"], ["plan", "-f", "DIR", "--json", "--refresh"]] {
            _ = record(try setup.workspace.run(arguments, environment: setup.environment))
        }

        // Compare outside #expect, so that a failure never prints the secret.
        usleep(300_000)
        outputs.append(setup.redis.logs())
        for path in [".tokenctl/state.db", ".tokenctl/state.db-wal"] {
            if let data = FileManager.default.contents(atPath: setup.workspace.root + "/" + path) { outputs.append(String(decoding: data, as: UTF8.self)) }
        }
        // MONITOR leaves out ACL commands (Redis hides admin commands); it shows the plugin's registry writes.
        #expect(setup.redis.logs().contains("\"HSET\" \"tokenctl-registry\""), "the MONITOR capture this test searches must exist")
        for (index, canary) in [v1, v2].enumerated() {
            #expect(outputs.filter { $0.contains(canary) }.isEmpty, "secret \(index) found in an output, the state, or Redis's log or MONITOR stream")
        }
    }

    @Test func killedTokenctlOrPluginLeavesNoCredentialBehindAndNothingTwice() throws {
        let setup = try Setup()
        defer { setup.remove() }
        // The plugin is killed after Redis made the change and before it answered (the wrapper kills itself once).
        let wrapper = PluginWrapper.killedOnceAfterIssuing(Self.plugin, in: setup.workspace.root)
        setup.write(tokens: ["a", "b", "c"], command: wrapper)
        let crashed = try setup.apply(at: 0)
        #expect(crashed.status == 1 && crashed.stdout.contains("failed"), "\(crashed.stdout)\(crashed.stderr)")
        #expect(crashed.stderr.contains("exit status 137") || crashed.stdout.contains("exit status 137"), "\(crashed.stdout)\(crashed.stderr)")
        #expect(try setup.passwords("a") == 1, "Redis holds the credential the plugin made before it died")
        // The next run finds it by its idempotency key, revokes it, and issues again: one password per token.
        let repaired = try setup.apply(at: 60)
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
        for name in ["a", "b", "c"] {
            #expect(try setup.passwords(name) == 1, "\(name) has exactly one live password")
            #expect(try setup.redis.authenticates(user: setup.user(name), password: try setup.workspace.secret(name)))
        }

        // tokenctl killed (SIGKILL) after the issue and before it recorded it.
        setup.write(tokens: ["a", "b", "c", "d"])
        let killed = try setup.apply(at: 120, ["TOKENCTL_FAULT": "after-issue"])
        #expect(killed.signal == SIGKILL, "\(killed.stdout)\(killed.stderr)")
        let afterKill = try setup.apply(at: 180)
        #expect(afterKill.status == 0 && afterKill.stderr.contains("repaired"), "\(afterKill.stdout)\(afterKill.stderr)")
        #expect(try setup.passwords("d") == 1)
        #expect(try setup.redis.authenticates(user: setup.user("d"), password: try setup.workspace.secret("d")))
        let refreshed = try setup.workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(200)], environment: setup.environment)
        #expect(refreshed.stdout.contains("No changes"), "nothing leaked, nothing to do: \(refreshed.stdout)\(refreshed.stderr)")
    }

    @Test func aServerOutageFailsOnlyThoseTokensAndTheNextRunCatchesUp() throws {
        var setup = try Setup()
        defer { setup.remove() }
        setup.write(tokens: ["a"])
        #expect(try setup.apply(at: 0).status == 0)
        let port = setup.redis.port
        setup.redis.stop()
        setup.write(tokens: ["a", "b"])
        let down = try setup.apply(at: 60)
        #expect(down.status == 1, "\(down.stdout)\(down.stderr)")
        #expect((down.stdout + down.stderr).contains("exec issuer 'cache'") && (down.stdout + down.stderr).contains("127.0.0.1:\(port)"),
                "the failure names the issuer and the server: \(down.stdout)\(down.stderr)")
        // The server comes back (a new one on another port: the manifest follows it), and the next run issues b.
        let restarted = try RedisTestServer.start()
        setup = Setup(redis: restarted, workspace: setup.workspace)
        setup.write(tokens: ["a", "b"])
        let back = try setup.apply(at: 120)
        #expect(back.stdout.contains("apps/b"), "\(back.stdout)\(back.stderr)")
        #expect(try setup.redis.authenticates(user: setup.user("b"), password: try setup.workspace.secret("b")))
    }

    @Test func pluginCheckPassesTheReferencePluginAndCatchesOneThatIgnoresIdempotency() throws {
        let setup = try Setup()
        defer { setup.remove() }
        setup.write(tokens: ["orders"])
        let checked = try setup.workspace.run(["plugin", "check", "-f", "DIR", "cache"], environment: setup.environment)
        #expect(checked.status == 0 && checked.stdout.contains("Every step passed."), "\(checked.stdout)\(checked.stderr)")
        for step in ["capabilities", "issue again under the same idempotency key", "lookup by idempotency key", "list includes",
                     "verify accepts", "verify refuses a wrong secret", "revoke", "list no longer shows", "verify refuses the revoked secret"] {
            #expect(checked.stdout.contains("ok    " + step), "\(step): \(checked.stdout)")
        }
        #expect(!(try setup.redis.cli(["ACL", "USERS"]).contains("plugin-check")), "the throwaway credential is gone from Redis")

        // A plugin that mints a new credential on every retry is caught.
        let careless = setup.workspace.root + "/careless-plugin"
        BinaryRunner.write(#"""
            #!/bin/sh
            input=$(cat)
            case "$input" in
              *'"operation":"capabilities"'*) printf '{"apiVersion":"tokenctl.io/plugin/v1","operations":["issue","revoke"]}' ;;
              *'"operation":"issue"'*) n=$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); printf '{"apiVersion":"tokenctl.io/plugin/v1","results":[{"credentialID":"c%s","secret":"s%s"}]}' "$n" "$n" ;;
              *) printf '{"apiVersion":"tokenctl.io/plugin/v1"}' ;;
            esac
            """#, to: careless)
        chmod(careless, 0o755)
        setup.write(tokens: ["orders"], command: careless)
        let caught = try setup.workspace.run(["plugin", "check", "-f", "DIR", "cache"], environment: setup.environment)
        #expect(caught.status == 1 && caught.stdout.contains("FAIL  issue again under the same idempotency key"), "\(caught.stdout)\(caught.stderr)")
        #expect(caught.stdout.contains("skip  lookup"), "\(caught.stdout)")
    }

    @Test func aScopeAboutPasswordsOrUserStateIsRefusedAndTheOtherTokensProceed() throws {
        let setup = try Setup()
        defer { setup.remove() }
        setup.write(tokens: ["good"])
        var text = try String(contentsOfFile: setup.workspace.root + "/tokens.yaml", encoding: .utf8)
        text += """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: sneaky, namespace: apps, owner: team-cache}
            spec:
              issuer: cache
              scopes: ["~cache:*", "nopass"]
              lifespan: 1h
              deliverTo: [{store: vault, key: apps/sneaky}]

            """
        setup.workspace.write(text)
        let applied = try setup.apply(at: 0)
        #expect(applied.status == 1 && (applied.stdout + applied.stderr).contains("scope 'nopass' is not an ACL rule"), "\(applied.stdout)\(applied.stderr)")
        #expect(try setup.passwords("good") == 1, "the other token was issued")
        #expect(!(try setup.redis.cli(["ACL", "USERS"]).contains(setup.user("sneaky"))), "nothing was made for the refused token")
        let registry = try setup.redis.cli(["HKEYS", "tokenctl-registry"])
        #expect(!registry.contains("sneaky"), "no record is left for it: \(registry)")
    }

    @Test func aThousandTokensThroughTheRedisPlugin() throws {
        let setup = try Setup()
        defer { setup.remove() }
        setup.write(tokens: (0..<1000).map { "svc-\($0)" })
        let outcome = try setup.apply(at: 0)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let users = try setup.redis.cli(["ACL", "USERS"]).split(separator: "\n").filter { $0.hasPrefix("tokenctl-apps.") }
        #expect(users.count == 1000)
        // A plugin run costs a process start (python3 here) plus its work: time a handshake, which does nothing else.
        let handshake = setup.workspace.root + "/handshake.json"
        BinaryRunner.write(#"{"apiVersion":"tokenctl.io/plugin/v1","operation":"capabilities","config":{},"secrets":{}}"#, to: handshake)
        let starts = try (0..<5).map { _ in
            try BinaryRunner.runProgram("/bin/sh", ["-c", "exec \"$0\" < \"$1\"", Self.plugin, handshake]).seconds
        }
        let start = starts.sorted()[2]
        // One handshake when the manifests load, then one issue run per batch of 500.
        let runs = 1 + 2
        let rate = 1000 / outcome.seconds
        print("redis plugin: 1000 tokens issued and delivered in \(String(format: "%.2f", outcome.seconds)) s (\(Int(rate)) tokens/s); "
              + "\(runs) plugin runs, a process start costs \(Int(start * 1000)) ms, so starting processes is "
              + "\(Int(100 * Double(runs) * start / outcome.seconds))% of the time")
        // The aim is 500 tokens/s (met on a quiet machine: 1,200 to 1,400 in a debug build); the test's floor is lower so a
        // busy CI machine does not fail it, and still far above an unbatched plugin (one 90 ms process per token).
        #expect(rate >= 200, "batching keeps the rate far above one process per token")
    }
}

extension RedisPluginTests.Setup {
    init(redis: RedisTestServer, workspace: ApplyCommandTests.Workspace) {
        self.redis = redis
        self.workspace = workspace
    }
}
