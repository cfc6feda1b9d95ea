import Foundation
import TestSupport
import Testing
import TokenctlModel
import TokenctlSQLite

/// The postgres issuer end to end, against a real server: issue, rotation with overlap (both roles log in),
/// retirement, ghosts, faults, and no password in the server's log (log_statement = all).
@Suite(.serialized) struct PostgresIssuerTests {
    /// One test's world: a unique role prefix and group role on the shared cluster, a workspace, and the admin URL.
    struct World {
        let cluster: PostgresTestCluster
        let prefix = "t" + UUID().uuidString.prefix(6).lowercased()
        let workspace = ApplyCommandTests.Workspace()
        var group: String { prefix + "_read" }
        var environment: [String: String] { ["PG_ADMIN_URL": cluster.adminURL] }

        init() throws {
            cluster = try PostgresTestCluster.shared()
            try cluster.psql("CREATE ROLE \(group) NOLOGIN")
        }

        func issuer(ghosts: String = "report", url: String = "env:PG_ADMIN_URL", reassign: String? = nil) -> String {
            """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: db}
            spec:
              type: postgres
              ghosts: \(ghosts)
              postgres: {url: \(url), roleTemplate: "\(prefix)_{namespace}_{name}_v{version}", tls: {mode: disable}\(reassign.map { ", reassignOwnedTo: \($0)" } ?? "")}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: envfile}
            spec: {type: dotenv, dotenv: {path: app.env}}

            """
        }

        func token(_ name: String, scopes: [String]? = nil, format: String = "connection-string", lifespan: String = "1h",
                   every: String = "40m", overlap: String = "10m") -> String {
            """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: \(name), namespace: apps, owner: team-apps}
            spec:
              issuer: db
              scopes: [\((scopes ?? ["role:\(group)"]).map { "\"\($0)\"" }.joined(separator: ", "))]
              secretFormat: \(format)
              lifespan: \(lifespan)
              rotation: {every: \(every), overlap: \(overlap)}
              deliverTo: [{store: envfile, key: apps/\(name)}]

            """
        }

        func role(_ name: String, _ version: Int) -> String { "\(prefix)_apps_\(name)_v\(version)" }

        func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> BinaryRunner.Outcome {
            try workspace.run(arguments, environment: environment.merging(extra) { _, new in new })
        }

        func apply(at offset: Int64 = 0, _ extra: [String] = [], environment extra2: [String: String] = [:]) throws -> BinaryRunner.Outcome {
            try workspace.run(at: Self.moment(offset), ["apply", "-f", "DIR", "--auto-approve"] + extra,
                              environment: environment.merging(extra2) { _, new in new })
        }

        static let start = Int64(Date().timeIntervalSince1970)
        static func moment(_ offset: Int64) -> String { Timestamp(secondsSinceEpoch: start + offset).description }

        func roles() throws -> Set<String> {
            Set(try cluster.psql("SELECT rolname FROM pg_roles WHERE rolname LIKE '\(prefix)\\_%'").split(separator: "\n").map(String.init))
                .subtracting([group])
        }

        /// Logs in with a delivered connection string (or a password for `role`); true when the server lets it in.
        func canLogIn(_ secret: String, role: String? = nil) -> Bool {
            var url = secret
            if let role, var components = URLComponents(string: cluster.adminURL) {
                components.user = role
                components.password = secret
                url = components.string ?? ""
            }
            return (try? cluster.psql("SELECT current_user", url: url)) != nil
        }

        func remove() {
            if let roles = try? roles() {
                for role in roles { _ = try? cluster.psql("DROP ROLE IF EXISTS \(role)") }
            }
            _ = try? cluster.psql("DROP ROLE IF EXISTS \(group)")
            workspace.remove()
        }
    }

    @Test func issuesRotatesWithOverlapAndRetires() async throws {
        let world = try World()
        defer { world.remove() }
        world.workspace.write(world.issuer() + world.token("reporting") + world.token("grafana", format: "password"))
        let first = try world.apply(at: 0)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(try world.roles() == [world.role("reporting", 1), world.role("grafana", 1)])
        let v1 = try world.workspace.secret("reporting")
        #expect(v1.hasPrefix("postgresql://\(world.role("reporting", 1)):"))
        #expect(world.canLogIn(v1))
        let grafana = try world.workspace.secret("grafana")
        #expect(!grafana.contains("://") && grafana.count == 32)
        #expect(world.canLogIn(grafana, role: world.role("grafana", 1)))
        // Group membership, VALID UNTIL from the lifespan, and the ownership marker.
        #expect(try world.cluster.psql("SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
                                       + "WHERE g.rolname = '\(world.group)' AND r.rolname = '\(world.role("reporting", 1))'").contains("1"))
        let validUntil = try world.cluster.psql("SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '\(world.role("reporting", 1))'")
        #expect(Int64(validUntil.trimmingCharacters(in: .whitespacesAndNewlines)) == World.start + 3_600)
        #expect(try world.cluster.psql("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '\(world.role("reporting", 1))'")
            .hasPrefix("tokenctl:issuer=db;token=apps/reporting;version=1;intent="))

        // Rotation: v2 beside v1; both log in during the overlap.
        // At trace level too, no password and no verifier reaches any output (the driver's own logs are capped).
        let rotated = try world.apply(at: 41 * 60, environment: ["TOKENCTL_LOG_LEVEL": "trace"])
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        #expect(rotated.stderr.contains("tokenctl.apply"), "trace logs expected")
        #expect(!rotated.stderr.contains("SCRAM-SHA-256") && !rotated.stdout.contains("SCRAM-SHA-256"))
        let v2 = try world.workspace.secret("reporting")
        #expect(v2.hasPrefix("postgresql://\(world.role("reporting", 2)):"))
        #expect(try world.roles().contains(world.role("reporting", 1)) && world.roles().contains(world.role("reporting", 2)))
        #expect(world.canLogIn(v1) && world.canLogIn(v2))

        // After the overlap: v1 is dropped and cannot log in; v2 can.
        let retired = try world.apply(at: 52 * 60)
        #expect(retired.status == 0, "\(retired.stdout)\(retired.stderr)")
        #expect(try !world.roles().contains(world.role("reporting", 1)))
        #expect(!world.canLogIn(v1))
        #expect(world.canLogIn(v2))

        // Retirement: removing the tokens from the manifests drops their roles. A role that owns objects, with no
        // reassignOwnedTo, is made NOLOGIN and kept, and retirement says why; once its objects are gone, it is dropped.
        let owner = world.role("reporting", 2)
        try world.cluster.psql("CREATE TABLE \(world.prefix)_owned (id int); ALTER TABLE \(world.prefix)_owned OWNER TO \(owner)")
        world.workspace.write(world.issuer())
        let stopped = try world.apply(at: 53 * 60, ["--allow-mass-retirement"])
        #expect(stopped.status == 1)
        #expect(stopped.stdout.contains("\(owner) owns objects") && stopped.stdout.contains("reassignOwnedTo"))
        #expect(try world.roles().contains(owner) && !world.roles().contains(world.role("grafana", 2)))
        #expect(!world.canLogIn(v2))
        try world.cluster.psql("DROP TABLE \(world.prefix)_owned")
        #expect(try world.apply(at: 54 * 60, ["--allow-mass-retirement"]).status == 0)
        #expect(try world.roles().isEmpty)

        // No password reached the server's log, though every statement is logged.
        let log = world.cluster.serverLog
        #expect(log.contains("CREATE ROLE \"\(world.role("reporting", 2))\" LOGIN PASSWORD 'SCRAM-SHA-256$4096:"))
        for secret in [v1, v2, grafana] {
            let password = secret.contains("://") ? URLComponents(string: secret)?.password ?? secret : secret
            #expect(!log.contains(password), "a password reached the server log")
            for output in [first, rotated, retired] { #expect(!output.stdout.contains(password) && !output.stderr.contains(password)) }
        }
    }

    @Test func ghostsAreReportedAndMarkedOnesRetiredButUnmarkedOnesNeverTouched() async throws {
        let world = try World()
        defer { world.remove() }
        world.workspace.write(world.issuer(ghosts: "retire") + world.token("api"))
        #expect(try world.apply().status == 0)
        // A role named like ours without the marker, and one with our marker that state does not know.
        let unmarked = world.role("handmade", 1)
        let orphan = world.role("lost", 3)
        try world.cluster.psql("CREATE ROLE \(unmarked) LOGIN")
        try world.cluster.psql("CREATE ROLE \(orphan) LOGIN")
        try world.cluster.psql("COMMENT ON ROLE \(orphan) IS 'tokenctl:issuer=db;token=apps/lost;version=3;intent=-;'")
        let plan = try world.run(["plan", "-f", "DIR", "--refresh"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains(unmarked) && plan.stdout.contains("never touched"))
        #expect(plan.stdout.contains(orphan) && plan.stdout.contains("will be revoked"))
        #expect(try world.apply(at: 1, ["--refresh"]).status == 0)
        #expect(try world.roles().contains(unmarked))
        #expect(try !world.roles().contains(orphan))
        #expect(try world.roles().contains(world.role("api", 1)))
    }

    @Test func faultsAreClearAndNameTheToken() async throws {
        let world = try World()
        defer { world.remove() }
        let base = world.issuer()
        // A scope naming a role that does not exist: plan --refresh refuses, naming the token; apply issues the others.
        world.workspace.write(base + world.token("good") + world.token("bad", scopes: ["role:\(world.prefix)_nosuch"]))
        let plan = try world.run(["plan", "-f", "DIR", "--refresh"])
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("token apps/bad: scope role:\(world.prefix)_nosuch: no role named \(world.prefix)_nosuch"))
        let partial = try world.apply()
        #expect(partial.status == 1)
        #expect(partial.stdout.contains("failed  issue     apps/bad v1") && partial.stdout.contains("does not exist"))
        #expect(try world.roles() == [world.role("good", 1)])

        // A role name clash with a role tokenctl does not manage.
        try world.cluster.psql("CREATE ROLE \(world.role("clash", 1)) LOGIN")
        world.workspace.write(base + world.token("good") + world.token("clash"))
        let clash = try world.apply(at: 1)
        #expect(clash.status == 1)
        #expect(clash.stdout.contains("apps/clash") && clash.stdout.contains("already exists and is not managed by tokenctl"))

        // Unreachable server, wrong password, missing CREATEROLE: clear, and the password never shows.
        world.workspace.write(base + world.token("more"))
        let unreachable = try world.apply(at: 2, ["--allow-mass-retirement"], environment: ["PG_ADMIN_URL": "postgres://tokenctl_admin:hunter2pw@127.0.0.1:1/postgres"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stdout.contains("apps/more") && unreachable.stdout.contains("cannot connect to postgres://tokenctl_admin@127.0.0.1:1/postgres"))
        var wrong = try #require(URLComponents(string: world.cluster.adminURL))
        wrong.password = "hunter2pw"
        let denied = try world.apply(at: 3, ["--allow-mass-retirement"], environment: ["PG_ADMIN_URL": wrong.string ?? ""])
        #expect(denied.status == 1)
        #expect(denied.stdout.contains("28P01") && denied.stdout.contains("check the user and password"))
        let weak = world.prefix + "_weak"
        try world.cluster.psql("CREATE ROLE \(weak) LOGIN PASSWORD 'weakpass1'")
        var weakURL = try #require(URLComponents(string: world.cluster.adminURL))
        weakURL.user = weak
        weakURL.password = "weakpass1"
        let unprivileged = try world.apply(at: 4, ["--allow-mass-retirement"], environment: ["PG_ADMIN_URL": weakURL.string ?? ""])
        #expect(unprivileged.status == 1)
        #expect(unprivileged.stdout.contains("CREATEROLE"))
        for outcome in [unreachable, denied, unprivileged] {
            #expect(!outcome.stdout.contains("hunter2pw") && !outcome.stderr.contains("hunter2pw") && !outcome.stdout.contains("weakpass1"))
        }
        // Fixed, the next apply converges (the failed issues left nothing half-made).
        let fixed = try world.apply(at: 5, ["--allow-mass-retirement"])
        #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
        let more = try #require(try await world.workspace.recorded().tokens[TokenID(namespace: "apps", name: "more")]?.active)
        #expect(try world.roles().contains(more.credentialID))
        #expect(world.canLogIn(try world.workspace.secret("more")))
    }

    @Test func aConnectionLostMidApplyLeavesNoRoleOutsideState() async throws {
        let world = try World()
        defer { world.remove() }
        let tokens = (0..<300).map { world.token("bulk\($0)", format: "password") }.joined()
        world.workspace.write(world.issuer() + tokens)
        // Kill the issuer's server connections (they have no application_name; psql's are named) while apply runs.
        // On the real clock (the world starts now): nothing here depends on the moment.
        let apply = try ControllerProcess(["apply", "-f", world.workspace.root, "--auto-approve"], environment: world.environment,
                                          scratch: world.workspace.root)
        let killed = waitFor(timeout: 30) { () -> Bool? in
            guard let roles = try? world.roles(), !roles.isEmpty else { return nil }
            let count = (try? world.cluster.psql("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE usename = 'tokenctl_admin' AND application_name = '' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                """)) ?? "0"
            return (Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0 ? true : nil
        }
        let status = apply.waitForExit(timeout: 120)
        #expect(killed == true, "no issuer connection was caught mid-apply")
        #expect(status == 1 || status == 0)
        // Whatever happened, every role at the server is either recorded in state or repaired by the next apply.
        let second = try world.apply(at: 1)
        #expect(second.status == 0, "\(second.stdout.suffix(2000))\(second.stderr.suffix(2000))")
        let state = try await world.workspace.recorded()
        let recorded = Set(state.tokens.values.flatMap { $0.versions.filter { $0.status != .revoked }.map(\.credentialID) })
        let roles = try world.roles()
        let difference = "only at the server: \(roles.subtracting(recorded).sorted().prefix(5)); only in state: "
            + "\(recorded.subtracting(roles).sorted().prefix(5))"
        #expect(roles == recorded, "\(difference)")
        #expect(state.tokens.count == 300)
        #expect(state.tokens.values.allSatisfy { $0.active != nil && !$0.versions.contains { $0.status == .pending } })
    }

    @Test func tlsModesAreHonoured() async throws {
        let directory = NSTemporaryDirectory() + "tokenctl-pgtls-" + UUID().uuidString.prefix(8)
        setenv("PG_CLUSTER_TLS", "1", 1)
        defer { unsetenv("PG_CLUSTER_TLS") }
        let url = try BinaryRunner.runProgram("/bin/bash", [PostgresTestCluster.script, "start", directory,
                                                            String(Int.random(in: 40_000...60_000))]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? BinaryRunner.runProgram("/bin/bash", [PostgresTestCluster.script, "stop", directory]) }
        try #require(url.hasPrefix("postgres://"), "the TLS cluster did not start")
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let otherCA = workspace.root + "/other-ca.pem"
        _ = try BinaryRunner.runProgram("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                                                             "-keyout", workspace.root + "/other.key", "-out", otherCA])
        func manifests(_ tls: String) -> String {
            """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: db}
            spec: {type: postgres, postgres: {url: env:PG_ADMIN_URL, tls: \(tls)}}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: envfile}
            spec: {type: dotenv, dotenv: {path: app.env}}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: tls, namespace: apps, owner: team-apps}
            spec: {issuer: db, scopes: ["role:tls_group"], lifespan: 1h, deliverTo: [{store: envfile, key: apps/tls}]}

            """
        }
        let environment = ["PG_ADMIN_URL": url]
        #expect(try BinaryRunner.runProgram("/usr/bin/env", ["psql", url, "-qc", "CREATE ROLE tls_group NOLOGIN"]).status == 0)
        // A CA that did not sign the server's certificate: refused, clearly, nothing issued.
        workspace.write(manifests("{mode: verify-full, caFile: \(otherCA)}"))
        let refused = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: environment)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("apps/tls") && refused.stdout.contains("cannot connect"))
        // The right CA: verified, issued, and the delivered URL asks for verification too.
        workspace.write(manifests("{mode: verify-full, caFile: \(directory)/ca.pem}"))
        let verified = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: environment)
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let secret = try workspace.secret("tls")
        #expect(secret.contains("sslmode=verify-full"))
        let ssl = try BinaryRunner.runProgram("/usr/bin/env", ["psql", url.replacingOccurrences(of: "sslmode=disable", with: "sslmode=require"),
                                                               "-tAc", "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE s.ssl"])
        #expect(ssl.status == 0, "\(ssl.stderr)")
    }

    @Test func sharedStateOnPostgreSQL() async throws {
        let world = try World()
        defer { world.remove() }
        let stateURL = try world.cluster.createDatabase(prefix: "shared")
        world.workspace.write(ManifestText.header() + ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d"))
        let applied = try world.run(["apply", "-f", "DIR", "--auto-approve"], environment: ["TOKENCTL_STATE_URL": stateURL])
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.workspace.state + "/state.db"))
        #expect(try world.cluster.psql("SELECT count(*) FROM tokenctl_token", url: stateURL).contains("1"))
        let again = try world.run(["plan", "-f", "DIR", "--detailed-exitcode", "--state", stateURL])
        #expect(again.status == 0 && again.stdout.contains("No changes"))
        #expect(try world.run(["audit", "-f", "DIR", "--verify"], environment: ["TOKENCTL_STATE_URL": stateURL]).status == 0)
        #expect(try world.run(["status", "-f", "DIR"], environment: ["TOKENCTL_STATE_URL": stateURL]).stdout.contains("apps/web"))
    }
}
