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

    static func issuer(_ path: String, timeout: Int64 = 5, secrets: [String: String] = [:],
                       environment: [String: String] = ["PATH": "/usr/bin:/bin"]) throws -> ExecIssuer {
        var settings = ExecSettings(command: [path], timeout: TokenDuration(seconds: timeout))
        settings.handshake = try #require(try? JSONDecoder().decode(PluginProtocol.Capabilities.self, from: Data(capabilities.utf8)))
        return ExecIssuer(name: "partner", settings: settings, secrets: secrets, environment: environment)
    }

    static let answer = #"{"apiVersion":"tokenctl.io/plugin/v1","results":[{"credentialID":"c0","secret":"s0"},{"credentialID":"c1","secret":"s1"},{"credentialID":"c2","secret":"s2"}]}"#

    @Test func aPluginThatLeavesAChildHoldingItsOutputIsDoneWhenItExits() async throws {
        let tag = "62.\(Int.random(in: 1000...9999))"
        let issuer = try Self.issuer(Self.plugin("sleep \(tag) & printf '%s' '\(Self.answer)'"), timeout: 10)
        let start = Date()
        let results = await issuer.issueEach(Self.requests, now: Self.now)
        #expect(Date().timeIntervalSince(start) < 2, "the run ends at the plugin's exit, not at the timeout")
        #expect(results.map { (try? $0.get())?.credentialID } == ["c0", "c1", "c2"])
        usleep(200_000)
        let survivors = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains(tag) == true
        }
        #expect(survivors.isEmpty, "the child it left is killed with its process group")
    }

    @Test func aPluginThatClosesItsOutputBeforeExitingIsNotKilled() async throws {
        let issuer = try Self.issuer(Self.plugin("printf '%s' '\(Self.answer)'; exec >&- 2>&-; sleep 0.3; exit 0"))
        let results = await issuer.issueEach(Self.requests, now: Self.now)
        #expect(results.map { (try? $0.get())?.credentialID } == ["c0", "c1", "c2"], "\(Self.failures(results))")
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
        let masterKey = "master-" + UUID().uuidString, cloudKey = "cloud-" + UUID().uuidString
        // tokenctl's own environment holds its key and a cloud credential; the plugin gets neither.
        let issuer = try Self.issuer(Self.plugin("""
            env > "\(directory)/env"; tr '\\0' ' ' < /proc/$$/cmdline > "\(directory)/argv"
            echo "connecting with \(admin)" >&2; echo "password=\(issued)" >&2; echo "token \(issued) leaked" >&2; exit 1
            """, in: directory), secrets: ["adminPassword": admin],
            environment: ["PATH": "/usr/bin:/bin", "TOKENCTL_MASTER_KEY": masterKey, "AWS_SECRET_ACCESS_KEY": cloudKey])
        let failures = Self.failures(await issuer.issueEach(Self.requests, now: Self.now))
        let text = failures.joined(separator: "\n")
        #expect(failures.count == 3 && text.contains("(sensitive)"))
        let environment = try String(contentsOfFile: directory + "/env", encoding: .utf8)
        let argv = try String(contentsOfFile: directory + "/argv", encoding: .utf8)
        #expect(environment.contains("PATH=/usr/bin:/bin"), "the plugin's environment was captured")
        // Compared outside #expect, so that a failure never prints the secret.
        let leaked = [text, environment, argv].map { [admin, issued, masterKey, cloudKey].contains(where: $0.contains) }
        #expect(leaked == [false, false, false], "stderr masked, environment and argv clean")
    }

    @Test func anIssuedSecretInAnotherEntrysErrorIsMasked() async throws {
        let secret = "s3cr3t-" + UUID().uuidString
        let issuer = try Self.issuer(Self.plugin(#"""
            printf '{"apiVersion":"tokenctl.io/plugin/v1","results":[{"credentialID":"c0","secret":"\#(secret)"},{"error":"conflict with \#(secret)"},{"credentialID":"c2","secret":"\#(secret)x","hint":"hint \#(secret)x"}]}'
            """#))
        let results = await issuer.issueEach(Self.requests, now: Self.now)
        let shown = Self.failures(results).joined() + results.compactMap { try? $0.get() }.map(\.hint).joined()
        #expect(!shown.contains(secret) && shown.contains("conflict with (sensitive)"), "a sibling's error and hints never show a secret")
    }

    @Test func aCredentialNamedVariableCannotBePassedToAPlugin() throws {
        let directory = Scratch.directory("manifests")
        let file = directory + "/issuer.yaml"
        FileManager.default.createFile(atPath: file, contents: Data("""
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: partner}
            spec:
              type: exec
              exec:
                command: ["/bin/true"]
                environment: [PASSWORD_STORE_DIR, AWS_SECRET_ACCESS_KEY, TOKENCTL_MASTER_KEY]

            """.utf8))
        let errors = ManifestLoader(registry: .standard).load(paths: [file], now: Self.now).diagnostics.filter { $0.severity == .error }
        #expect(errors.map(\.code) == ["secret-in-environment", "secret-in-environment"], "\(errors.map(\.message))")
        #expect(errors.map { $0.location?.column } == [39, 62] && errors.allSatisfy { $0.location?.line == 8 })
        #expect(errors.first?.message.contains("exec.secrets") == true)
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
