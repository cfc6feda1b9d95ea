import Foundation
import Testing
import TokenctlModel
import TokenctlSQLite
import TokenctlState

/// `reconcile --watch` end to end, on real time and second-scale lifespans: rotations and retirements on time,
/// metrics and probes over HTTP, outages of the state, broken manifests, failing tokens, and SIGTERM.
@Suite(.serialized) struct ControllerTests {
    static func token(_ name: String, every: String = "6s", overlap: String = "3s", store: String = "envfile") -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: apps, owner: team-apps}
        spec:
          issuer: local
          scopes: [read]
          lifespan: 60s
          rotation: {every: \(every), overlap: \(overlap)}
          deliverTo: [{store: \(store), key: apps/\(name)}]

        """
    }

    static let slow = token("steady", every: "50s", overlap: "5s")

    struct Harness {
        let workspace = ApplyCommandTests.Workspace()
        var root: String { workspace.root }

        func start(_ extra: [String] = []) throws -> ControllerProcess {
            let process = try ControllerProcess(["reconcile", "--watch", "-f", root, "--interval", "1m", "--listen", "127.0.0.1:0"] + extra,
                                                environment: ["TOKENCTL_LOG_LEVEL": "info"], scratch: root)
            try process.waitUntilListening()
            return process
        }

        func status() throws -> [[String: Any]] {
            let outcome = try workspace.run(["status", "-f", "DIR", "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any]
            return object?["tokens"] as? [[String: Any]] ?? []
        }

        func row(_ name: String) throws -> [String: Any]? {
            try status().first { ($0["token"] as? String) == "apps/\(name)" }
        }

        func activeVersion(_ name: String) async throws -> CredentialVersion? {
            try await workspace.recorded().tokens[TokenID(namespace: "apps", name: name)]?.active
        }
    }

    @Test func rotatesAndRetiresOnTimeAndMetricsMove() async throws {
        let harness = Harness()
        defer { harness.workspace.remove() }
        harness.workspace.write(ManifestText.header() + Self.token("fast") + Self.slow)
        let controller = try harness.start(["--serve-introspection"])
        let first = try #require(await waitForAsync(timeout: 20) { try await harness.activeVersion("fast") })
        let firstSecret = try harness.workspace.secret("fast")
        let introspected = controller.request("POST", "/introspect", body: "token=\(firstSecret)")
        #expect(introspected.status == 200)
        #expect(introspected.body.contains(#""active":true"#) && introspected.body.contains(#""sub":"apps/fast""#))
        #expect(!introspected.body.contains(firstSecret))

        // The next rotation is due at most 6 s after issue: it must happen within about a second of falling due.
        let dueText = try #require(try harness.row("fast")?["nextRotationAt"] as? String)
        let due = try #require(try? Timestamp(parsing: dueText))
        let rotated = try #require(await waitForAsync(timeout: 20) { () async throws -> (Date, Int)? in
            guard let active = try await harness.activeVersion("fast"), active.version > first.version else { return nil }
            return (Date(), active.version)
        })
        let lateness = rotated.0.timeIntervalSince1970 - Double(due.secondsSinceEpoch)
        #expect(lateness < 2.5, "rotated \(lateness) s after falling due")
        // During the overlap both versions are valid; after it the old one is revoked.
        let secondSecret = try harness.workspace.secret("fast")
        #expect(controller.request("POST", "/introspect", body: "token=\(firstSecret)").body.contains(#""active":true"#))
        #expect(controller.request("POST", "/introspect", body: "token=\(secondSecret)").body.contains(#""active":true"#))
        let revoked = await waitForAsync(timeout: 10) { () -> Bool? in
            controller.request("POST", "/introspect", body: "token=\(firstSecret)").body == #"{"active":false}"# ? true : nil
        }
        #expect(revoked == true)
        // The credential in force now (the rotation goes on every 6 s) verifies; the first one no longer does.
        let current = try harness.workspace.secret("fast")
        #expect(try BinaryRunner.runProgram("/bin/sh", ["-c", "printf '%s' \"$2\" | exec \"$0\" verify --state-dir \"$1\"",
                                                         BinaryRunner.executable, harness.workspace.state, current]).status == 0)
        #expect(try BinaryRunner.runProgram("/bin/sh", ["-c", "printf '%s' \"$2\" | exec \"$0\" verify --state-dir \"$1\"",
                                                         BinaryRunner.executable, harness.workspace.state, firstSecret]).status != 0)

        #expect((controller.metric(#"tokenctl_changes_total{action="rotate",result="success"}"#) ?? 0) >= 1)
        #expect((controller.metric(#"tokenctl_changes_total{action="retire",result="success"}"#) ?? 0) >= 1)
        #expect((controller.metric(#"tokenctl_reconcile_passes_total{result="success"}"#) ?? 0) >= 3)
        #expect((controller.metric("tokenctl_credentials_issued_total") ?? 0) >= 3)
        #expect(controller.metric(#"tokenctl_tokens{issuer="local""#) == 2)
        #expect((controller.metric("tokenctl_earliest_expiry_seconds") ?? 0) > 0)
        #expect((controller.metric(#"tokenctl_introspection_requests_total{result="active"}"#) ?? 0) >= 3)
        #expect(controller.request("GET", "/healthz").status == 200)
        #expect(controller.request("GET", "/readyz").status == 200)

        // Last use recorded by introspection reaches status (written in batches every 5 s).
        let used = await waitForAsync(timeout: 12) { try? harness.row("fast")?["lastUsedAt"] as? String }
        #expect(used != nil)

        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
        let lock = try await SQLiteStateStore(directory: harness.workspace.state, mode: .readOnly).currentLock(now: .now)
        #expect(lock == nil, "SIGTERM left the state lock behind")
        for output in [controller.stdout, controller.stderr] {
            #expect(!output.contains(firstSecret) && !output.contains(secondSecret) && !output.contains(current))
        }
    }

    @Test func readinessFollowsTheStateAndRecoversWithoutRestart() async throws {
        let harness = Harness()
        defer { harness.workspace.remove() }
        harness.workspace.write(ManifestText.header() + Self.slow)
        let controller = try harness.start(["--interval", "1s"])
        #expect(await waitForAsync(timeout: 20) { controller.request("GET", "/readyz").status == 200 ? true : nil } == true)

        // An operator's apply holds the lock: not ready, and ready again once it is released.
        let store = try SQLiteStateStore(directory: harness.workspace.state, mode: .readWrite)
        _ = try await store.acquireLock(LockRequest(holder: "operator", host: ProcessInfo.processInfo.hostName, processID: getpid(),
                                                    ttl: TokenDuration(seconds: 600)), now: .now)
        #expect(await waitForAsync(timeout: 10) { controller.request("GET", "/readyz").status == 503 ? true : nil } == true)
        #expect(controller.request("GET", "/readyz").body.contains("locked by operator"))
        #expect(controller.metric("tokenctl_state_reachable") == 0)
        try await store.releaseLock(holder: "operator", processID: getpid())
        #expect(await waitForAsync(timeout: 20) { controller.request("GET", "/readyz").status == 200 ? true : nil } == true)

        // The database file disappears: not ready (and nothing is re-issued from empty state); restored, ready again.
        let state = harness.workspace.state
        let aside = harness.root + "/aside"
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        let names = ["state.db", "state.db-wal", "state.db-shm"].filter { FileManager.default.fileExists(atPath: state + "/" + $0) }
        for name in names { try FileManager.default.moveItem(atPath: state + "/" + name, toPath: aside + "/" + name) }
        #expect(await waitForAsync(timeout: 10) { controller.request("GET", "/readyz").status == 503 ? true : nil } == true)
        #expect(controller.request("GET", "/readyz").body.contains("disappeared"))
        #expect(!FileManager.default.fileExists(atPath: state + "/state.db"))
        for name in names { try FileManager.default.moveItem(atPath: aside + "/" + name, toPath: state + "/" + name) }
        #expect(await waitForAsync(timeout: 40) { controller.request("GET", "/readyz").status == 200 ? true : nil } == true)
        #expect(controller.request("GET", "/healthz").status == 200)

        // Malformed and oversized requests get a 4xx and change nothing.
        #expect(HTTPAnswer.send(to: controller.address, raw: "NOT HTTP AT ALL\r\n\r\n").status / 100 != 2)
        let huge = String(repeating: "a", count: 100_000)
        #expect(controller.request("POST", "/introspect", body: "token=\(huge)").status / 100 == 4)
        #expect(controller.request("GET", "/nowhere").status == 404)
        #expect(controller.request("GET", "/readyz").status == 200)

        controller.signal(SIGINT)
        #expect(controller.waitForExit(timeout: 20) == 0)
        #expect(try await SQLiteStateStore(directory: state, mode: .readOnly).currentLock(now: .now) == nil)
    }

    @Test func aBrokenEditKeepsTheLastGoodSetAndAFailingTokenBacksOffWithoutBlockingOthers() async throws {
        let harness = Harness()
        defer { harness.workspace.remove() }
        // The dotenv store 'blocked' cannot be written while a plain file sits where its directory should be.
        BinaryRunner.write("not a directory", to: harness.root + "/blocked")
        let blockedStore = """
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: blockedfile}
            spec: {type: dotenv, dotenv: {path: blocked/app.env}}

            """
        harness.workspace.write(ManifestText.header() + blockedStore + Self.token("fast") + Self.token("stuck", every: "50s", store: "blockedfile"))
        let controller = try harness.start()

        // The stuck token is retried with backoff and needs attention; the fast one keeps rotating.
        let firstFast = try #require(await waitForAsync(timeout: 20) { try await harness.activeVersion("fast") })
        #expect(await waitForAsync(timeout: 20) { controller.metric("tokenctl_tokens_needing_attention") == 1 ? true : nil } == true)
        let failures = await waitForAsync(timeout: 20) { () -> Double? in
            let value = controller.metric(#"tokenctl_changes_total{action="issue",result="failure"}"#) ?? 0
            return value >= 3 ? value : nil
        }
        #expect(failures != nil, "the failing token was not retried")
        let fastNow = try await harness.activeVersion("fast")
        #expect((fastNow?.version ?? 0) > firstFast.version, "a failing token blocked the others")
        let statusText = try harness.workspace.run(["status", "-f", "DIR"]).stdout
        #expect(statusText.contains("needs attention"))
        #expect(statusText.contains("apps/stuck"))

        // A broken edit: nothing from it is applied, the last good set stays in force.
        let valid = ManifestText.header() + blockedStore + Self.token("fast") + Self.token("stuck", every: "50s", store: "blockedfile")
        harness.workspace.write(valid + Self.token("added") + "  bogusField: 1\n")
        #expect(await waitForAsync(timeout: 10) { controller.metric("tokenctl_manifests_valid") == 0 ? true : nil } == true)
        let beforeBroken = try await harness.activeVersion("fast")
        #expect(await waitForAsync(timeout: 15) { () async throws -> Bool? in
            (try await harness.activeVersion("fast")?.version ?? 0) > (beforeBroken?.version ?? 0) ? true : nil
        } == true, "the last good set was not kept in force")
        #expect(try await harness.activeVersion("added") == nil)
        #expect(controller.stderr.contains("bogusField"))

        // Fixing both: the added token is issued, the stuck one recovers on its next retry.
        try FileManager.default.removeItem(atPath: harness.root + "/blocked")
        try FileManager.default.createDirectory(atPath: harness.root + "/blocked", withIntermediateDirectories: true)
        harness.workspace.write(valid + Self.token("added"))
        #expect(await waitForAsync(timeout: 20) { try await harness.activeVersion("added") } != nil)
        #expect(await waitForAsync(timeout: 40) { try await harness.activeVersion("stuck") } != nil)
        #expect(await waitForAsync(timeout: 20) { controller.metric("tokenctl_tokens_needing_attention") == 0 ? true : nil } == true)
        #expect(controller.metric("tokenctl_manifests_valid") == 1)

        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 20) == 0)
    }
}

/// Polls an async probe every 100 ms until it returns a value or the time is up.
func waitForAsync<T>(timeout: Double, _ probe: () async throws -> T?) async -> T? {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        if let value = try? await probe() { return value }
        try? await Task.sleep(nanoseconds: 100_000_000)
    } while Date() < deadline
    return nil
}

extension Timestamp {
    /// The wall clock, for tests that run on real time.
    static var now: Timestamp { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }
}
