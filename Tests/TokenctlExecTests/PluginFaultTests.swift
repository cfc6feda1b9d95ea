import Foundation
import TestSupport
import Testing
import TokenctlDrivers
import TokenctlExec
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Plugins that hang, crash, print garbage or too much, speak another version, or print a secret on stderr: each costs
/// at most its timeout and bounded memory, fails only its own tokens, and never shows a secret.
@Suite struct PluginFaultTests {
    static let now = Timestamp(secondsSinceEpoch: 1_796_040_000)
    static let capabilities = #"{"apiVersion":"tokenctl.io/plugin/v1","operations":["issue","revoke","list","lookup"],"batch":10}"#

    /// A plugin script that answers the handshake and runs `body` for every other operation.
    static func plugin(_ body: String, in directory: String = Scratch.directory("plugin")) -> String {
        let path = directory + "/plugin"
        let script = """
            #!/bin/sh
            input=$(cat)
            case "$input" in *'"operation":"capabilities"'*) printf '%s' '\(capabilities)'; exit 0;; esac
            \(body)
            """
        FileManager.default.createFile(atPath: path, contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])
        return path
    }

    static func issuer(_ path: String, timeout: Int64 = 5, secrets: [String: String] = [:]) throws -> ExecIssuer {
        var settings = ExecSettings(command: [path], timeout: TokenDuration(seconds: timeout))
        settings.handshake = try #require(try? JSONDecoder().decode(PluginProtocol.Capabilities.self, from: Data(capabilities.utf8)))
        return ExecIssuer(name: "partner", settings: settings, secrets: secrets, environment: ["PATH": "/usr/bin:/bin"])
    }

    static let requests = (0..<3).map { index in
        IssueRequest(issuer: "partner", owner: "team", subject: "apps/t\(index)", scopes: ["read"], expiresAt: nil,
                     idempotencyKey: "apps/t\(index)#v1#n", version: 1)
    }

    static func failures(_ results: [Result<IssuedCredential, any Error>]) -> [String] {
        results.compactMap { result in
            if case .failure(let error) = result { return "\(error)" }
            return nil
        }
    }

    @Test func aHungPluginIsKilledWithItsChildrenAtItsTimeout() async throws {
        let tag = "61.\(Int.random(in: 1000...9999))"
        let issuer = try Self.issuer(Self.plugin("sleep \(tag) & sleep \(tag)"), timeout: 1)
        let start = Date()
        let failures = Self.failures(await issuer.issueEach(Self.requests, now: Self.now))
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 3, "took \(seconds) s")
        #expect(failures.count == 3 && failures.allSatisfy { $0.contains("did not answer within 1 s") }, "\(failures)")
        usleep(200_000)
        let survivors = try String(contentsOfFile: "/proc/loadavg", encoding: .utf8).isEmpty ? 0
            : FileManager.default.contentsOfDirectory(atPath: "/proc").filter { pid in
                (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains(tag) == true
            }.count
        #expect(survivors == 0, "the plugin's background child was killed with its process group")
    }

    @Test func aPluginPrintingAHundredMegabytesIsStoppedAtTheBound() async throws {
        let issuer = try Self.issuer(Self.plugin("head -c 100000000 /dev/zero"))
        let start = Date()
        let failures = Self.failures(await issuer.issueEach(Self.requests, now: Self.now))
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(failures.count == 3 && failures.allSatisfy { $0.contains("printed more than 16 MiB") }, "\(failures)")
    }

    @Test(arguments: [
        ("echo 'this is not json'", "not a JSON object"),
        (#"printf '{"apiVersion":"tokenctl.io/plugin/v0","results":[]}'"#, "speaks 'tokenctl.io/plugin/v0'"),
        (#"printf '{"apiVersion":"tokenctl.io/plugin/v1"}'"#, "without the field 'results'"),
        (#"printf '{"apiVersion":"tokenctl.io/plugin/v1","results":[{"credentialID":"x","secret":"s"}]}'"#, "1 results for 3 requests"),
        ("echo 'backend unreachable' >&2; exit 3", "exit status 3: backend unreachable"),
        ("kill -9 $$", "exit status 137"),
    ])
    func aBadAnswerFailsEveryTokenOfTheRunAndSaysWhy(body: String, expected: String) async throws {
        let issuer = try Self.issuer(Self.plugin(body))
        let failures = Self.failures(await issuer.issueEach(Self.requests, now: Self.now))
        #expect(failures.count == 3 && failures.allSatisfy { $0.contains("exec issuer 'partner'") && $0.contains(expected) }, "\(failures)")
    }

    @Test func aRefusedRequestFailsOnlyItsOwnToken() async throws {
        let issuer = try Self.issuer(Self.plugin(#"""
            printf '{"apiVersion":"tokenctl.io/plugin/v1","results":[{"credentialID":"c0","secret":"s0"},{"error":"scope read is unknown"},{"credentialID":"c2","secret":"s2"}]}'
            """#))
        let results = await issuer.issueEach(Self.requests, now: Self.now)
        #expect(results.map { (try? $0.get())?.credentialID } == ["c0", nil, "c2"])
        #expect(Self.failures(results).first?.contains("scope read is unknown") == true)
    }

    @Test func secretsOnStderrAreMaskedAndSecretsNeverTravelByArgvOrEnvironment() async throws {
        let directory = Scratch.directory("plugin")
        let admin = "adminpw-" + UUID().uuidString
        let issued = "rds_" + UUID().uuidString.replacingOccurrences(of: "-", with: "") + "Zx9Qw7Lp"
        let issuer = try Self.issuer(Self.plugin("""
            env > "\(directory)/env"; tr '\\0' ' ' < /proc/$$/cmdline > "\(directory)/argv"
            echo "connecting with \(admin)" >&2; echo "password=\(issued)" >&2; echo "token \(issued) leaked" >&2; exit 1
            """, in: directory), secrets: ["adminPassword": admin])
        let failures = Self.failures(await issuer.issueEach(Self.requests, now: Self.now))
        let text = failures.joined(separator: "\n")
        #expect(failures.count == 3 && text.contains("(sensitive)"))
        let environment = try String(contentsOfFile: directory + "/env", encoding: .utf8)
        let argv = try String(contentsOfFile: directory + "/argv", encoding: .utf8)
        // Compared outside #expect, so that a failure never prints the secret.
        let leaked = [text, environment, argv].map { $0.contains(admin) || $0.contains(issued) }
        #expect(leaked == [false, false, false], "stderr masked, environment and argv clean")
    }

    @Test func aMissingPluginOrOneOfAnotherVersionIsAValidationErrorWithItsLine() throws {
        let directory = Scratch.directory("manifests")
        let wrongVersion = directory + "/old-plugin"
        FileManager.default.createFile(atPath: wrongVersion, contents: Data("#!/bin/sh\nprintf '{\"apiVersion\":\"tokenctl.io/plugin/v0\"}'\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        for (command, expected) in [("./no-such-plugin", "is not an executable file"), ("./old-plugin", "speaks 'tokenctl.io/plugin/v0'")] {
            let file = directory + "/issuer.yaml"
            FileManager.default.createFile(atPath: file, contents: Data("""
                apiVersion: tokenctl/v1
                kind: Issuer
                metadata: {name: partner}
                spec:
                  type: exec
                  exec:
                    command: ["\(command)"]

                """.utf8))
            let result = ManifestLoader(registry: .standard).load(paths: [file], now: Self.now)
            let errors = result.diagnostics.filter { $0.severity == .error }
            #expect(errors.count == 1 && errors[0].message.contains(expected), "\(errors.map(\.message))")
            #expect(errors.first?.location?.line == 7, "\(errors.map { $0.location?.description ?? "" })")
        }
    }
}
