import Foundation
import Testing
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// `tokenctl serve` (RFC 7662 introspection), `status --unused`, JSON logs, and the second signal.
@Suite(.serialized) struct ServeTests {
    static func token(_ name: String, lifespan: String = "30d", every: String = "20d") -> String {
        ManifestText.token(name, lifespan: lifespan, every: every)
    }

    static func ago(_ seconds: Int64) -> String { Timestamp(secondsSinceEpoch: Timestamp.now.secondsSinceEpoch - seconds).description }
    static func ahead(_ seconds: Int64) -> String { Timestamp(secondsSinceEpoch: Timestamp.now.secondsSinceEpoch + seconds).description }

    @Test func introspectionAnswersPerRFC7662AndRecordsLastUse() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        // Issued two hours ago: 'old' (one-hour lifespan) has expired since, 'gone' was retired soon after issue.
        workspace.write(ManifestText.header() + Self.token("old", lifespan: "1h", every: "40m") + Self.token("api") + Self.token("idle")
                        + Self.token("gone"))
        #expect(try workspace.run(at: Self.ago(7_200), ["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        let expired = try workspace.secret("old")
        let gone = try workspace.secret("gone")
        workspace.write(ManifestText.header() + Self.token("old", lifespan: "1h", every: "40m") + Self.token("api") + Self.token("idle"))
        let retired = try workspace.run(at: Self.ago(7_100), ["apply", "-f", "DIR", "--auto-approve"])
        #expect(retired.status == 0, "\(retired.stdout)\(retired.stderr)")
        let active = try workspace.secret("api")

        #expect(try workspace.run(["serve", "--state-dir", workspace.root + "/nowhere", "--listen", "127.0.0.1:0"]).stderr
            .contains("there is no builtin authority"))
        let server = try ControllerProcess(["serve", "--state-dir", workspace.state, "--listen", "127.0.0.1:0"], scratch: workspace.root)
        try server.waitUntilListening()

        let answer = server.request("POST", "/introspect", body: "token=\(active)&token_type_hint=access_token")
        #expect(answer.status == 200)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
        #expect(fields["active"] as? Bool == true)
        #expect(fields["scope"] as? String == "orders:read reports:read")
        #expect(fields["sub"] as? String == "apps/api")
        #expect(fields["token_type"] as? String == "Bearer")
        let issuedAt = try #require(fields["iat"] as? Int)
        let expiresAt = try #require(fields["exp"] as? Int)
        #expect(expiresAt - issuedAt == 30 * 86_400)
        #expect(!answer.body.contains(active))

        // Unknown (well formed), malformed, revoked and expired tokens all answer the same: only active false.
        for presented in [TokenFormat.generate(prefix: "tkc"), "tkc_not-a-token", gone, expired, active + "x"] {
            let inactive = server.request("POST", "/introspect", body: "token=\(presented)")
            #expect(inactive.status == 200 && inactive.body == #"{"active":false}"#, "\(inactive.body)")
        }
        // Bad requests: 4xx, and the server goes on answering.
        #expect(server.request("POST", "/introspect", body: "nottoken=1").status == 400)
        #expect(server.request("POST", "/introspect", body: "{\"token\":\"x\"}", contentType: "application/json").status == 415)
        #expect(server.request("POST", "/introspect", body: "token=" + String(repeating: "a", count: 20_000)).status == 413)
        #expect(server.request("GET", "/introspect").status / 100 == 4)
        #expect(HTTPAnswer.send(to: server.address, raw: "\u{1}\u{2}garbage\r\n\r\n").status / 100 != 2)
        #expect(HTTPAnswer.send(to: server.address, raw: "POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
                                + "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\ntoken="
                                + String(repeating: "b", count: 10_000)).status == 413)
        #expect(server.request("POST", "/introspect", body: "token=\(active)").body.contains(#""active":true"#))
        #expect(server.request("GET", "/readyz").status == 200)
        #expect((server.metric(#"tokenctl_introspection_requests_total{result="inactive"}"#) ?? 0) == 5)
        #expect((server.metric(#"tokenctl_introspection_requests_total{result="active"}"#) ?? 0) == 2)

        // SIGTERM flushes the last-use times before exiting.
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: 20) == 0)
        let status = try workspace.run(["status", "-f", "DIR", "--json"]).stdout
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])?["tokens"] as? [[String: Any]])
        let api = try #require(rows.first { $0["token"] as? String == "apps/api" })
        let idle = try #require(rows.first { $0["token"] as? String == "apps/idle" })
        #expect(api["lastUsedAt"] != nil)
        #expect(idle["lastUsedAt"] == nil)

        // status --unused: 'idle' was never used and has been managed for two hours; 'api' was used just now.
        let unusedHour = try workspace.run(["status", "-f", "DIR", "--unused", "1h"]).stdout
        #expect(unusedHour.contains("apps/idle") && !unusedHour.contains("apps/api"))
        let unusedMonth = try workspace.run(["status", "-f", "DIR", "--unused", "30d"]).stdout
        #expect(unusedMonth.contains("No token has gone unused for 30d"))
        let later = try workspace.run(["status", "-f", "DIR", "--unused", "30d", "--at", Self.ahead(31 * 86_400)]).stdout
        #expect(later.contains("apps/idle") && later.contains("apps/api"))
        for output in [server.stdout, server.stderr, unusedHour, status] {
            #expect(!output.contains(active) && !output.contains(gone) && !output.contains(expired))
        }
    }

    /// The bound `serve` promises: a revocation is answered within one second of the command that made it returning,
    /// and the successor a rotation delivers is answered active at once.
    @Test func aRevokedTokenIsAnsweredInactiveWithinASecond() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ManifestText.header() + Self.token("api") + Self.token("other"))
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        let compromised = try workspace.secret("api")
        let other = try workspace.secret("other")
        let server = try ControllerProcess(["serve", "--state-dir", workspace.state, "--listen", "127.0.0.1:0"], scratch: workspace.root)
        try server.waitUntilListening()
        #expect(server.request("POST", "/introspect", body: "token=\(compromised)").body.contains(#""active":true"#))

        let rotated = try workspace.run(["rotate", "-f", "DIR", "apps/api", "--compromised", "--reason", "INC-7: leaked", "--auto-approve"])
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        let revokedAt = Date()
        let successor = try workspace.secret("api")
        #expect(successor != compromised)
        #expect(server.request("POST", "/introspect", body: "token=\(successor)").body.contains(#""active":true"#), "the successor at once")
        var answeredInactiveAfter: Double?
        while Date().timeIntervalSince(revokedAt) < 3 {
            if server.request("POST", "/introspect", body: "token=\(compromised)").body == #"{"active":false}"# {
                answeredInactiveAfter = Date().timeIntervalSince(revokedAt)
                break
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        let delay = try #require(answeredInactiveAfter, "the revoked token was still answered active after 3 s")
        #expect(delay < 1.0, "answered inactive \(delay) s after the revocation")
        #expect(server.request("POST", "/introspect", body: "token=\(other)").body.contains(#""active":true"#))
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: 20) == 0)
        for output in [server.stdout, server.stderr, rotated.stdout, rotated.stderr] {
            #expect(!output.contains(compromised) && !output.contains(successor))
        }
    }

    @Test func jsonLogsAtTraceLevelCarryNoSecret() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let masterKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        workspace.write(ManifestText.header() + ControllerTests.token("fast", every: "3s", overlap: "1s"))
        let controller = try ControllerProcess(
            ["reconcile", "--watch", "-f", workspace.root, "--interval", "1m", "--listen", "127.0.0.1:0", "--log-format", "json",
             "--serve-introspection"],
            environment: ["TOKENCTL_LOG_LEVEL": "trace", "TOKENCTL_MASTER_KEY": masterKey], scratch: workspace.root)
        try controller.waitUntilListening()
        var secrets: Set<String> = []
        _ = await waitForAsync(timeout: 20) { () -> Bool? in
            if let secret = try? workspace.secret("fast"), !secret.isEmpty { secrets.insert(secret) }
            return secrets.count >= 3 ? true : nil
        }
        #expect(secrets.count >= 3, "expected at least two rotations")
        for secret in secrets { _ = controller.request("POST", "/introspect", body: "token=\(secret)") }
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        let lines = controller.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count > 5)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["message"] != nil, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""level":"debug""#) })
        for output in [controller.stdout, controller.stderr] {
            for secret in secrets { #expect(!output.contains(secret)) }
            #expect(!output.contains(masterKey))
        }
    }

    @Test func aSecondSignalExitsAtOnceAndTheNextRunRepairs() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        // Enough tokens that the first pass takes a while.
        let tokens = (0..<6_000).map { index in
            """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: t\(index), namespace: bulk, owner: team-apps}
            spec: {issuer: local, scopes: [read], lifespan: 30d, deliverTo: [{store: vault, key: bulk/t\(index)}]}

            """
        }.joined()
        workspace.write(ManifestText.header(dotenv: false) + tokens)
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1m"], scratch: workspace.root)
        let locked = await waitForAsync(timeout: 60) { () async throws -> Bool? in
            guard FileManager.default.fileExists(atPath: workspace.state + "/state.db") else { return nil }
            let store = try SQLiteStateStore(directory: workspace.state, mode: .readOnly)
            return try await store.currentLock(now: .now) != nil ? true : nil
        }
        #expect(locked == true)
        controller.signal(SIGTERM)
        usleep(100_000)
        let signalled = Date()
        controller.signal(SIGTERM)
        let status = controller.waitForExit(timeout: 10)
        #expect(status == 128 + SIGTERM, "exit status \(String(describing: status))")
        #expect(Date().timeIntervalSince(signalled) < 3)
        #expect(controller.stderr.contains("second signal"))
        // The interrupted pass is repaired by the next run (the dead process's lock is broken), and converges.
        let rerun = try workspace.run(["reconcile", "-f", "DIR"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let recorded = try await workspace.recorded()
        #expect(recorded.tokens.count == 6_000)
        #expect(recorded.tokens.values.allSatisfy { $0.active != nil && !$0.versions.contains { $0.status == .pending } })
    }
}
