import Foundation
import TestSupport
import Testing
import TokenctlModel

/// tokenctl's own notices, end to end: a real controller, a real local receiver that fails, goes down and comes back,
/// a restart in between, and each notice arriving exactly once per lead time.
@Suite(.serialized) struct NoticeTests {
    /// A permanent token whose exception ends at `exceptionEnds`, and a Notifier that wants to hear 3 days and 2d23h59m48s
    /// (12 s later) before that end, signed, in `format`, giving each attempt `timeout`.
    static func manifests(exceptionEnds: Timestamp, format: String = "json", timeout: String = "2s") -> String {
        ManifestText.header(dotenv: false) + """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: legacy, namespace: apps, owner: team-legacy}
            spec:
              issuer: local
              scopes: [read]
              lifespan: never
              exception: {reason: partner cannot rotate, approvedBy: security-team, ticket: SEC-42, expires: "\(exceptionEnds)"}
              deliverTo: [{store: vault, key: apps/legacy}]
            ---
            apiVersion: tokenctl/v1
            kind: Notifier
            metadata: {name: security}
            spec:
              url: env:HOOK_URL
              format: \(format)
              signingKey: env:HOOK_KEY
              timeout: \(timeout)
              events:
                expiring: {leadTimes: [3d, 2d23h59m48s]}

            """
    }

    static let signingKey = "notice-signing-key-for-tests"

    /// The notice keys in a JSON body.
    static func keys(_ body: String) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let notices = object["notices"] as? [[String: Any]] else { return [] }
        return notices.compactMap { $0["key"] as? String }
    }

    /// Checks a signature with Python's hmac module: an implementation independent of tokenctl's.
    static func signatureIsValid(_ request: WebhookReceiver.Request, directory: String) throws -> Bool {
        let bodyFile = directory + "/body-" + UUID().uuidString
        BinaryRunner.write(request.body, to: bodyFile)
        defer { unlink(bodyFile) }
        let script = """
            import hmac, hashlib, sys
            header, key, body = sys.argv[1], sys.argv[2].encode(), open(sys.argv[3], 'rb').read()
            parts = dict(p.split('=', 1) for p in header.split(','))
            expected = hmac.new(key, parts['t'].encode() + b'.' + body, hashlib.sha256).hexdigest()
            sys.exit(0 if hmac.compare_digest(expected, parts['v1']) else 1)
            """
        let outcome = try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c", script, request.headers["x-tokenctl-signature"] ?? "",
                                                                   signingKey, bodyFile])
        return outcome.status == 0
    }

    @Test func eachNoticeArrivesOncePerLeadTimeAcrossAnOutageAndARestart() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let start = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        workspace.write(Self.manifests(exceptionEnds: start + TokenDuration(seconds: 3 * 86_400 + 12)))
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        let secret = try workspace.secret("legacy")
        #expect(secret.hasPrefix("tk"))

        // The receiver fails (503) first, then goes down altogether.
        let failing = try WebhookReceiver.start { _ in (503, 0) }
        let arguments = ["reconcile", "--watch", "-f", workspace.root, "--interval", "1m", "--settle", "0s", "--listen", "127.0.0.1:0"]
        let first = try ControllerProcess(arguments, environment: ["HOOK_URL": failing.url + "/hook", "HOOK_KEY": Self.signingKey,
                                                                   "TOKENCTL_LOG_LEVEL": "info"], scratch: workspace.root)
        try first.waitUntilListening()
        let retried = waitFor(timeout: 60) { failing.requests.count >= 2 ? true : nil }
        #expect(retried == true, "the notice was not retried after a 503; stderr:\n\(first.stderr)")
        #expect(failing.requests.allSatisfy { Self.keys($0.body).count == 1 && Self.keys($0.body)[0].hasSuffix("/3d") })
        failing.stop()
        usleep(2_500_000)
        #expect(first.metric("tokenctl_notices_pending") == 1, "the notice stays queued while the receiver is down")
        first.signal(SIGTERM)
        #expect(first.waitForExit(timeout: 30) == 0)
        let status = try workspace.run(["status", "-f", "DIR"]).stdout
        #expect(status.contains("Notices: 1 waiting to be delivered, 1 of them after failed attempts"), "\(status)")

        // After the restart the receiver is back: the queued notice goes out once, and the second lead time's once.
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        try FileManager.default.createDirectory(atPath: workspace.root + "/second", withIntermediateDirectories: true)
        let second = try ControllerProcess(arguments, environment: ["HOOK_URL": receiver.url + "/hook", "HOOK_KEY": Self.signingKey,
                                                                    "TOKENCTL_LOG_LEVEL": "info"], scratch: workspace.root + "/second")
        try second.waitUntilListening()
        let both = waitFor(timeout: 60) { receiver.requests.flatMap { Self.keys($0.body) }.count >= 2 ? true : nil }
        #expect(both == true, "both lead times' notices did not arrive; stderr:\n\(second.stderr)")
        usleep(3_000_000)
        let delivered = receiver.requests.flatMap { Self.keys($0.body) }
        #expect(delivered.count == 2 && Set(delivered).count == 2, "each lead time exactly once: \(delivered)")
        #expect(delivered.contains { $0.hasSuffix("/3d") } && delivered.contains { !$0.hasSuffix("/3d") })
        for request in receiver.requests {
            #expect(request.method == "POST" && request.path == "/hook" && request.headers["content-type"] == "application/json")
            #expect(try Self.signatureIsValid(request, directory: workspace.root), "a bad signature on \(request.body)")
            #expect(request.body.contains(#""owner":"team-legacy""#) && request.body.contains(#""token":"apps/legacy""#))
        }
        #expect(second.metric("tokenctl_notices_sent_total") == 2)
        #expect(second.metric("tokenctl_notices_pending") == 0)
        second.signal(SIGTERM)
        #expect(second.waitForExit(timeout: 30) == 0)

        // Recorded in the audit log; the secret is nowhere: not in a notice, a log line or the audit.
        let audit = try workspace.run(["audit", "-f", "DIR"]).stdout
        #expect(audit.components(separatedBy: " notice ").count - 1 == 2, "\(audit)")
        let everything = (failing.requests + receiver.requests).map(\.body).joined() + first.stderr + first.stdout + second.stderr
            + second.stdout + audit
        #expect(!everything.contains(secret))
        #expect(!everything.contains(receiver.url) && !everything.contains(failing.url), "the webhook URL is a credential")
    }

    @Test func aReceiverThatHangsNeverDelaysARotation() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let start = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        // A notice is due at once (the exception ends within the 3d lead time), and `api` rotates every 4 seconds. Each
        // delivery attempt hangs for its whole 30 s timeout: were delivery part of the passes, no rotation would happen.
        workspace.write(Self.manifests(exceptionEnds: start + TokenDuration(seconds: 86_400), timeout: "30s")
                        + ApplyCommandTests.token("api", lifespan: "20s", every: "4s", overlap: "2s", stores: ["vault"]))
        let hanging = try WebhookReceiver.start { _ in (200, 40) }
        defer { hanging.stop() }
        let controller = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root, "--interval", "1m", "--settle", "0s"],
                                               environment: ["HOOK_URL": hanging.url + "/hook", "HOOK_KEY": Self.signingKey],
                                               scratch: workspace.root)
        let issued = waitFor(timeout: 30) { (try? workspace.version(of: "apps/api")).flatMap { $0 >= 1 ? $0 : nil } }
        #expect(issued != nil, "api was not issued; stderr:\n\(controller.stderr)")
        // Within 13 s the token is issued and rotated at least twice while every delivery attempt hangs for its 2 s timeout.
        usleep(13_000_000)
        let version = try workspace.version(of: "apps/api") ?? 0
        #expect(version >= 3, "rotations were delayed: v\(version) after 13 s; stderr:\n\(controller.stderr)")
        #expect(hanging.requests.count == 1, "the notice is being delivered, to a receiver that hangs")
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 30) == 0)
    }

    @Test func alertmanagerFormatNoticesReachARealAlertmanager() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let start = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        workspace.write(Self.manifests(exceptionEnds: start + TokenDuration(seconds: 2 * 86_400), format: "alertmanager"))
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        // No rules of its own (a file beside the manifests would be read as one): Prometheus only forwards nothing here.
        let rules = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: rules) }
        BinaryRunner.write("groups: []\n", to: rules + "/rules.yaml")
        let stack = try MonitoringStack.start(targets: [], rules: rules + "/rules.yaml", webhook: receiver.url + "/routed")
        defer { stack.stop() }
        let sent = try workspace.run(["notices", "-f", "DIR"],
                                     environment: ["HOOK_URL": "http://127.0.0.1:\(stack.alertmanagerPort)/api/v2/alerts", "HOOK_KEY": Self.signingKey])
        #expect(sent.status == 0 && sent.stdout.contains("Delivered 1 notice"), "\(sent.stdout)\(sent.stderr)")
        // Alertmanager holds the alert and routes it on, like any other.
        let routed = waitFor(timeout: 30) { receiver.requests.first { $0.body.contains("TokenctlNotice") } }
        let body = try #require(routed, "Alertmanager did not route the notice\n\(stack.logs)").body
        #expect(body.contains(#""event":"expiring""#) && body.contains(#""token":"legacy""#) && body.contains(#""owner":"team-legacy""#))
    }

    @Test func dryRunShowsWhatIsDueWithoutSendingAndSendingNeedsTheRealClock() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let start = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        workspace.write(Self.manifests(exceptionEnds: start + TokenDuration(seconds: 10 * 86_400), format: "slack"))
        #expect(try workspace.run(["apply", "-f", "DIR", "--auto-approve"]).status == 0)
        let receiver = try WebhookReceiver.start()
        defer { receiver.stop() }
        let environment = ["HOOK_URL": receiver.url + "/hook", "HOOK_KEY": Self.signingKey]
        #expect(try workspace.run(["notices", "-f", "DIR", "--dry-run"], environment: environment).stdout.hasPrefix("No notice is due"))
        let later = try workspace.run(["notices", "-f", "DIR", "--dry-run", "--at", (start + TokenDuration(seconds: 8 * 86_400)).description])
        #expect(later.status == 0 && later.stdout.contains("expiring") && later.stdout.contains("apps/legacy"), "\(later.stdout)\(later.stderr)")
        let json = try workspace.run(["notices", "-f", "DIR", "--dry-run", "--json", "--at", (start + TokenDuration(seconds: 8 * 86_400)).description])
        #expect(json.stdout.contains(#""formatVersion" : 1"#) && json.stdout.contains(#""event" : "expiring""#), "\(json.stdout)")
        #expect(receiver.requests.isEmpty, "a dry run sends nothing")
        let refused = try workspace.run(["notices", "-f", "DIR", "--at", "2027-01-01"], environment: environment)
        #expect(refused.status != 0 && refused.stderr.contains("--at needs --dry-run"))
        // The one-shot send: nothing due now, so nothing goes out and the run says so.
        let now = try workspace.run(["notices", "-f", "DIR"], environment: environment)
        #expect(now.status == 0 && now.stdout.contains("No new notice was due"), "\(now.stdout)\(now.stderr)")
        #expect(receiver.requests.isEmpty)
    }
}
