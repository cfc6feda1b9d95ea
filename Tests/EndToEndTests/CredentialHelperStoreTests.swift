import Foundation
import TestSupport
import Testing
import TokenctlModel

/// `docker-credential-pass` (Debian's golang-docker-credential-helpers, with `pass` and a throwaway GPG key) as an
/// exec store: delivery, rotation, retirement, write-only mode, crash repair, and no plaintext anywhere.
@Suite(.serialized) struct CredentialHelperStoreTests {
    struct PassStore {
        let gnupg = Scratch.directory("gnupg")
        let store = Scratch.directory("pass")
        let workspace = ApplyCommandTests.Workspace()
        var environment: [String: String] { ["GNUPGHOME": gnupg, "PASSWORD_STORE_DIR": store] }

        init() throws {
            chmod(gnupg, 0o700)
            let made = try BinaryRunner.runProgram("/usr/bin/gpg", ["--batch", "--passphrase", "", "--quick-gen-key",
                                                                     "tokenctl test <test@example.invalid>", "default", "default", "never"],
                                                   environment: environment)
            try #require(made.status == 0, "gpg: \(made.stderr)")
            let listed = try BinaryRunner.runProgram("/usr/bin/gpg", ["--list-keys", "--with-colons"], environment: environment)
            let fingerprint = try #require(listed.stdout.split(separator: "\n").first { $0.hasPrefix("fpr:") }?.split(separator: ":").last)
            let initialised = try BinaryRunner.runProgram("/usr/bin/pass", ["init", String(fingerprint)], environment: environment)
            try #require(initialised.status == 0, "pass: \(initialised.stderr)")
        }

        /// The builtin issuer, a pass store (`command` is the helper) and `tokens`.
        func write(tokens: [String], command: String = "docker-credential-pass", readable: Bool = true) {
            var text = ManifestText.header(dotenv: false) + """
                ---
                apiVersion: tokenctl/v1
                kind: Store
                metadata: {name: pass}
                spec:
                  type: exec
                  exec: {command: ["\(command)"], environment: [GNUPGHOME, PASSWORD_STORE_DIR], readable: \(readable)}

                """
            for name in tokens {
                text += """
                    ---
                    apiVersion: tokenctl/v1
                    kind: Token
                    metadata: {name: \(name), namespace: apps, owner: team-apps}
                    spec:
                      issuer: local
                      scopes: [read]
                      lifespan: 1h
                      rotation: {every: 40m, overlap: 10m}
                      deliverTo: [{store: pass, key: apps/\(name)}]

                    """
            }
            workspace.write(text)
        }

        func apply(at seconds: Int64, _ extra: [String: String] = [:], flags: [String] = []) throws -> BinaryRunner.Outcome {
            try workspace.run(at: ApplyCommandTests.at(seconds), ["apply", "-f", "DIR", "--auto-approve"] + flags,
                              environment: environment.merging(extra) { $1 })
        }

        /// What the helper itself answers for a key (its `get`), or nil.
        func helperSecret(_ key: String) throws -> String? {
            let input = workspace.root + "/get-input"
            BinaryRunner.write(key, to: input)
            defer { unlink(input) }
            let outcome = try BinaryRunner.runProgram("/bin/sh", ["-c", "exec docker-credential-pass get < \"$0\"", input],
                                                      environment: environment)
            struct Answer: Decodable { var Secret: String }
            let secret = (try? JSONDecoder().decode(Answer.self, from: Data(outcome.stdout.utf8)))?.Secret
            return secret?.isEmpty == false ? secret : nil
        }

        func helperKeys() throws -> [String] {
            let outcome = try BinaryRunner.runProgram("/usr/bin/docker-credential-pass", ["list"], environment: environment)
            return ((try? JSONDecoder().decode([String: String].self, from: Data(outcome.stdout.utf8))) ?? [:]).keys.sorted()
        }

        func remove() {
            _ = try? BinaryRunner.runProgram("/usr/bin/gpgconf", ["--kill", "gpg-agent"], environment: environment)
            for path in [gnupg, store] { try? FileManager.default.removeItem(atPath: path) }
            workspace.remove()
        }
    }

    @Test func deliverRotateRetireThroughDockerCredentialPass() throws {
        let pass = try PassStore()
        defer { pass.remove() }
        var outputs: [String] = []
        pass.write(tokens: ["web", "api"])
        let first = try pass.apply(at: 0)
        outputs.append(first.stdout + first.stderr)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let v1 = try pass.workspace.run(["secret", "get", "-f", "DIR", "apps/web"], environment: pass.environment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(v1.hasPrefix("tkc_"), "secret get reads the pass store back through the helper's get")
        #expect(try pass.helperSecret("apps/web") == v1, "the helper holds what tokenctl delivered")
        #expect(try pass.helperKeys() == ["apps/api", "apps/web"])

        let rotated = try pass.apply(at: 41 * 60)
        outputs.append(rotated.stdout + rotated.stderr)
        let v2 = try #require(try pass.helperSecret("apps/web"))
        #expect(rotated.status == 0 && v2 != v1)
        let status = try pass.workspace.run(["status", "-f", "DIR", "--at", ApplyCommandTests.at(41 * 60 + 5)], environment: pass.environment)
        outputs.append(status.stdout + status.stderr)
        #expect(status.stdout.contains("2 tokens: 2 ok"), "status reads the helper to check deliveries: \(status.stdout)\(status.stderr)")

        pass.write(tokens: ["web"])
        let retired = try pass.apply(at: 42 * 60)
        outputs.append(retired.stdout + retired.stderr)
        #expect(retired.status == 0, "\(retired.stdout)\(retired.stderr)")
        #expect(try pass.helperKeys() == ["apps/web"], "retiring erases the key from the helper")

        var files: [String] = []
        if let walker = FileManager.default.enumerator(atPath: pass.store) {
            for case let path as String in walker { files.append(path) }
        }
        for path in files {
            if let data = FileManager.default.contents(atPath: pass.store + "/" + path) { outputs.append(String(decoding: data, as: UTF8.self)) }
        }
        #expect(files.contains { $0.hasSuffix(".gpg") }, "pass keeps the secrets GPG-encrypted")
        for (index, canary) in [v1, v2].enumerated() {
            #expect(outputs.filter { $0.contains(canary) }.isEmpty, "secret \(index) found in an output or in the pass store's files")
        }
    }

    @Test func aHelperWithoutGetIsWriteOnly() throws {
        let pass = try PassStore()
        defer { pass.remove() }
        // The helper logs every action it is asked for: a write-only store is never asked to get.
        let logging = pass.workspace.root + "/logging-helper"
        BinaryRunner.write("#!/bin/sh\necho \"$1\" >> \"\(pass.workspace.root)/actions\"\nexec docker-credential-pass \"$@\"\n", to: logging)
        chmod(logging, 0o755)
        pass.write(tokens: ["web"], command: logging, readable: false)
        let applied = try pass.apply(at: 0)
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(try pass.helperSecret("apps/web")?.hasPrefix("tkc_") == true)
        let read = try pass.workspace.run(["secret", "get", "-f", "DIR", "apps/web"], environment: pass.environment)
        #expect(read.status != 0 && read.stdout.isEmpty, "a write-only store is never read: \(read.stderr)")
        pass.write(tokens: [], command: logging, readable: false)
        let retired = try pass.apply(at: 60, flags: ["--allow-mass-retirement"])
        #expect(try pass.helperKeys().isEmpty, "write-only stores are still erased by tokenctl's records: \(retired.stdout)\(retired.stderr)")
        let actions = try String(contentsOfFile: pass.workspace.root + "/actions", encoding: .utf8).split(separator: "\n")
        #expect(actions.contains("store") && actions.contains("erase") && !actions.contains("get"), "\(actions)")
    }

    @Test func aHelperKilledAfterStoringIsRepairedByTheNextRun() throws {
        let pass = try PassStore()
        defer { pass.remove() }
        let wrapper = pass.workspace.root + "/crashing-helper"
        let marker = pass.workspace.root + "/crashed-once"
        BinaryRunner.write("""
            #!/bin/sh
            docker-credential-pass "$@" || exit $?
            if [ "$1" = store ] && [ ! -e "\(marker)" ]; then : > "\(marker)"; kill -9 $$; fi
            """, to: wrapper)
        chmod(wrapper, 0o755)
        pass.write(tokens: ["web", "api"], command: wrapper)
        let crashed = try pass.apply(at: 0)
        #expect(crashed.status == 1, "\(crashed.stdout)\(crashed.stderr)")
        let repaired = try pass.apply(at: 60)
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
        let planned = try pass.workspace.run(["plan", "-f", "DIR", "--refresh", "--at", ApplyCommandTests.at(120)], environment: pass.environment)
        #expect(planned.stdout.contains("No changes"), "\(planned.stdout)\(planned.stderr)")
        for name in ["web", "api"] {
            let recorded = try pass.workspace.run(["secret", "get", "-f", "DIR", "apps/\(name)"], environment: pass.environment).stdout
            #expect(try pass.helperSecret("apps/\(name)") == recorded.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // tokenctl killed between issue and delivery: the next run repairs it.
        pass.write(tokens: ["web", "api", "db"], command: wrapper)
        let killed = try pass.apply(at: 180, ["TOKENCTL_FAULT": "after-issue"])
        #expect(killed.signal == SIGKILL)
        let afterKill = try pass.apply(at: 240)
        #expect(afterKill.status == 0 && afterKill.stderr.contains("repaired"), "\(afterKill.stdout)\(afterKill.stderr)")
        let db = try pass.workspace.run(["secret", "get", "-f", "DIR", "apps/db"], environment: pass.environment).stdout
        #expect(try pass.helperSecret("apps/db") == db.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try pass.workspace.inventory().filter { !$0.revoked }.count == 3, "one live credential per token, nothing leaked")
    }
}
