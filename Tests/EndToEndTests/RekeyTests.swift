import Crypto
import Foundation
import Testing
import TokenctlStores

/// `tokenctl rekey`: the master key rotates, every store on it and the audit log follow, an interrupted rotation is
/// finished by running it again, and a process still holding the old key can no longer write.
@Suite struct RekeyTests {
    /// Two stores on the master key, one with its own key file, and a dotenv store.
    static func manifests() -> String {
        ManifestText.header() + """
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: archive}
            spec: {type: encrypted-file, encryptedFile: {path: archive.vault, key: env:TOKENCTL_MASTER_KEY}}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: own}
            spec: {type: encrypted-file, encryptedFile: {path: own.vault, key: file:own.key}}

            """ + ["web", "jobs"].map {
                ApplyCommandTests.token($0, lifespan: "1h", every: "40m", overlap: "10m", stores: ["vault", "archive", "own", "envfile"])
            }.joined()
    }

    /// A workspace with the manifests applied; `environment` supplies the master key, or leaves it generated.
    static func applied(environment: [String: String] = [:]) throws -> ApplyCommandTests.Workspace {
        let workspace = ApplyCommandTests.Workspace()
        workspace.write(manifests().replacingOccurrences(of: "file:own.key", with: "file:\(workspace.root)/own.key"))
        BinaryRunner.write(Self.keyText() + "\n", to: workspace.root + "/own.key")
        let apply = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: environment)
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        return workspace
    }

    static func keyText() -> String { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } }

    static func key(_ text: String) throws -> SymmetricKey { try EncryptedFileStore.key(fromText: text, reference: "test") }

    /// Every entry of an encrypted store, read with `key`.
    static func entries(_ path: String, key text: String) async throws -> [String: String] {
        let store = EncryptedFileStore(path: path, key: try key(text), keyReference: "test")
        var entries: [String: String] = [:]
        for key in try await store.keys() { entries[key] = try await store.read(key: key)?.withRevealed { $0 } }
        return entries
    }

    static func opens(_ path: String, key text: String) async -> Bool {
        (try? await EncryptedFileStore(path: path, key: try key(text), keyReference: "test").keys()) != nil
    }

    static func masterKey(_ workspace: ApplyCommandTests.Workspace) -> String? {
        (try? String(contentsOfFile: workspace.state + "/master.key", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    @Test func rekeyRotatesTheGeneratedKeyAndEveryStoreOnItFollows() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let oldKey = try #require(Self.masterKey(workspace))
        let vault = workspace.root + "/secrets.vault", archive = workspace.root + "/archive.vault", own = workspace.root + "/own.vault"
        let before = (vault: try await Self.entries(vault, key: oldKey), archive: try await Self.entries(archive, key: oldKey))
        #expect(before.vault.count == 2 && before.archive.count == 2)
        let ownBefore = Self.bytes(own)

        let rekey = try workspace.run(["rekey", "-f", "DIR", "--reason", "yearly rotation"])
        #expect(rekey.status == 0, "\(rekey.stdout)\(rekey.stderr)")
        #expect(rekey.stdout.contains("store 'vault' (\(vault)): re-encrypted 2 entries"), "\(rekey.stdout)")
        #expect(rekey.stdout.contains("store 'archive' (\(archive)): re-encrypted 2 entries"), "\(rekey.stdout)")
        #expect(rekey.stdout.contains("store 'own' (\(own)): has its own key"), "\(rekey.stdout)")
        #expect(rekey.stdout.contains("Rekey complete: 2 stores re-encrypted"), "\(rekey.stdout)")

        let newKey = try #require(Self.masterKey(workspace))
        #expect(newKey != oldKey)
        #expect(!FileManager.default.fileExists(atPath: workspace.state + "/master.key.new"))
        #expect(try await Self.entries(vault, key: newKey) == before.vault, "every secret survives under the new key")
        #expect(try await Self.entries(archive, key: newKey) == before.archive)
        #expect(!(await Self.opens(vault, key: oldKey)), "the old key opens nothing now")
        #expect(!(await Self.opens(archive, key: oldKey)))
        #expect(Self.bytes(own) == ownBefore, "a store with its own key is left as it is")

        let audit = try workspace.run(["audit", "-f", "DIR", "--verify"])
        #expect(audit.status == 0 && audit.stdout.contains("Audit log intact"), "\(audit.stdout)\(audit.stderr)")
        let log = try workspace.run(["audit", "-f", "DIR"]).stdout
        #expect(log.contains("request rekey reason: yearly rotation"), "\(log)")
        #expect(log.contains("change rekey → ok — master key rotated: 2 stores re-encrypted"), "\(log)")
        #expect(try workspace.run(["plan", "-f", "DIR"]).stdout.contains("No changes."))
        let apply = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"])
        #expect(apply.status == 0 && apply.stdout.contains("No changes."), "the stores read as delivered: \(apply.stdout)\(apply.stderr)")

        for secret in before.vault.values + [oldKey, newKey] {
            #expect(!(rekey.stdout + rekey.stderr + log).contains(secret), "no secret or key reaches any output")
        }
    }

    @Test func anExternalKeyRotatesToTheOneSuppliedAndTheOldOneCanNoLongerWrite() async throws {
        let oldKey = Self.keyText(), newKey = Self.keyText()
        let workspace = try Self.applied(environment: ["TOKENCTL_MASTER_KEY": oldKey])
        defer { workspace.remove() }
        let vault = workspace.root + "/secrets.vault"
        let before = try await Self.entries(vault, key: oldKey)
        #expect(Self.masterKey(workspace) == nil)

        let withoutNewKey = try workspace.run(["rekey", "-f", "DIR"], environment: ["TOKENCTL_MASTER_KEY": oldKey])
        #expect(withoutNewKey.status == 1)
        #expect(withoutNewKey.stderr.contains("put the new key in TOKENCTL_NEW_MASTER_KEY or a file passed with --new-key-file"),
                "\(withoutNewKey.stderr)")
        #expect(await Self.opens(vault, key: oldKey), "a refused rekey changes nothing")
        let auditBefore = try workspace.run(["audit", "-f", "DIR"], environment: ["TOKENCTL_MASTER_KEY": oldKey]).stdout

        let keyFile = workspace.root + "/new.key"
        BinaryRunner.write(newKey + "\n", to: keyFile)
        let rekey = try workspace.run(["rekey", "-f", "DIR", "--new-key-file", keyFile], environment: ["TOKENCTL_MASTER_KEY": oldKey])
        #expect(rekey.status == 0, "\(rekey.stdout)\(rekey.stderr)")
        #expect(rekey.stdout.contains("set TOKENCTL_MASTER_KEY to the new key wherever tokenctl runs"), "\(rekey.stdout)")
        #expect(try await Self.entries(vault, key: newKey) == before)

        // A process that still has the old key (a CI secret not yet updated) must not write under it.
        let stale = try workspace.run(["apply", "-f", "DIR", "--auto-approve"], environment: ["TOKENCTL_MASTER_KEY": oldKey])
        #expect(stale.status == 1)
        #expect(stale.stderr.contains("was sealed with another master key"), "\(stale.stderr)")
        let auditAfter = try workspace.run(["audit", "-f", "DIR", "--verify"], environment: ["TOKENCTL_MASTER_KEY": newKey])
        #expect(auditAfter.status == 0, "the stale run appended nothing: \(auditAfter.stdout)\(auditAfter.stderr)")
        let entries = try workspace.run(["audit", "-f", "DIR"], environment: ["TOKENCTL_MASTER_KEY": newKey]).stdout
        #expect(entries.components(separatedBy: "\n").count == auditBefore.components(separatedBy: "\n").count + 2,
                "two entries were added, the rekey request and its change: \(entries)")

        let current = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"], environment: ["TOKENCTL_MASTER_KEY": newKey])
        #expect(current.status == 0 && current.stdout.contains("No changes."), "\(current.stdout)\(current.stderr)")
        let again = try workspace.run(["rekey", "-f", "DIR"], environment: ["TOKENCTL_MASTER_KEY": newKey, "TOKENCTL_NEW_MASTER_KEY": newKey])
        #expect(again.status == 1 && again.stderr.contains("the new master key is the one in use"), "\(again.stderr)")
    }

    @Test func movingFromTheGeneratedKeyToAnExternalOneRemovesTheOldFile() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let newKey = Self.keyText()
        let rekey = try workspace.run(["rekey", "-f", "DIR"], environment: ["TOKENCTL_NEW_MASTER_KEY": newKey])
        #expect(rekey.status == 0, "\(rekey.stdout)\(rekey.stderr)")
        #expect(Self.masterKey(workspace) == nil, "the old key opens nothing and must not be picked up by a run without the new one")
        #expect(rekey.stdout.contains("from now on supply the new key in TOKENCTL_MASTER_KEY"), "\(rekey.stdout)")
        let withoutKey = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(withoutKey.status == 1, "no key is made up while stores need the real one: \(withoutKey.stdout)")
        #expect(Self.masterKey(workspace) == nil)
        let withKey = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"], environment: ["TOKENCTL_MASTER_KEY": newKey])
        #expect(withKey.status == 0 && withKey.stdout.contains("No changes."), "\(withKey.stdout)\(withKey.stderr)")
    }

    @Test(arguments: ["rekey-after-new-key", "rekey-after-store:1", "rekey-after-store:2", "rekey-after-audit"])
    func anInterruptedRekeyLosesNothingAndIsFinishedByRunningItAgain(_ fault: String) async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let oldKey = try #require(Self.masterKey(workspace))
        let vault = workspace.root + "/secrets.vault", archive = workspace.root + "/archive.vault"
        let before = (vault: try await Self.entries(vault, key: oldKey), archive: try await Self.entries(archive, key: oldKey))

        let killed = try workspace.run(["rekey", "-f", "DIR"], environment: ["TOKENCTL_FAULT": fault])
        #expect(killed.signal == SIGKILL, "\(killed.stdout)\(killed.stderr)")
        #expect(FileManager.default.fileExists(atPath: workspace.state + "/master.key.new"), "the new key is kept before any store changes")

        // Until the rotation is finished, nothing may write with the old key.
        let stores = (Self.bytes(vault), Self.bytes(archive))
        let refused = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("a rotation of the master key was interrupted"), "\(refused.stderr)")
        #expect(Self.bytes(vault) == stores.0 && Self.bytes(archive) == stores.1)

        let finished = try workspace.run(["rekey", "-f", "DIR"])
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(finished.stdout.contains("Resuming the interrupted rotation"), "\(finished.stdout)")
        let newKey = try #require(Self.masterKey(workspace))
        #expect(newKey != oldKey)
        #expect(!FileManager.default.fileExists(atPath: workspace.state + "/master.key.new"))
        #expect(try await Self.entries(vault, key: newKey) == before.vault)
        #expect(try await Self.entries(archive, key: newKey) == before.archive)
        let audit = try workspace.run(["audit", "-f", "DIR", "--verify"])
        #expect(audit.status == 0, "\(audit.stdout)\(audit.stderr)")
        let apply = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"])
        #expect(apply.status == 0 && apply.stdout.contains("No changes."), "\(apply.stdout)\(apply.stderr)")
    }

    @Test func anInterruptedRotationToASuppliedKeyStopsEveryRunUntilItIsFinished() async throws {
        let oldKey = Self.keyText(), newKey = Self.keyText()
        let workspace = try Self.applied(environment: ["TOKENCTL_MASTER_KEY": oldKey])
        defer { workspace.remove() }
        let vault = workspace.root + "/secrets.vault", archive = workspace.root + "/archive.vault"
        let before = (vault: try await Self.entries(vault, key: oldKey), archive: try await Self.entries(archive, key: oldKey))
        let keys = ["TOKENCTL_MASTER_KEY": oldKey, "TOKENCTL_NEW_MASTER_KEY": newKey]

        let killed = try workspace.run(["rekey", "-f", "DIR"], environment: keys.merging(["TOKENCTL_FAULT": "rekey-after-store:1"]) { $1 })
        #expect(killed.signal == SIGKILL, "\(killed.stdout)\(killed.stderr)")
        // One store is under the new key, one under the old: nothing may run with either key until the rotation ends.
        for key in [oldKey, newKey] {
            let refused = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"], environment: ["TOKENCTL_MASTER_KEY": key])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("a rotation of the master key (tokenctl rekey) was interrupted"), "\(refused.stderr)")
        }
        let another = try workspace.run(["rekey", "-f", "DIR"], environment: ["TOKENCTL_MASTER_KEY": oldKey, "TOKENCTL_NEW_MASTER_KEY": Self.keyText()])
        #expect(another.status == 1 && another.stderr.contains("an interrupted rotation to another new key"), "\(another.stderr)")

        let finished = try workspace.run(["rekey", "-f", "DIR"], environment: keys)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(finished.stdout.contains("Resuming the interrupted rotation."), "\(finished.stdout)")
        #expect(try await Self.entries(vault, key: newKey) == before.vault)
        #expect(try await Self.entries(archive, key: newKey) == before.archive)
        let applied = try workspace.run(["apply", "-f", "DIR", "--auto-approve", "--refresh"], environment: ["TOKENCTL_MASTER_KEY": newKey])
        #expect(applied.status == 0 && applied.stdout.contains("No changes."), "\(applied.stdout)\(applied.stderr)")
    }

    @Test func rekeyNeedsEveryManifest() throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let oldKey = Self.masterKey(workspace)
        let partial = try workspace.run(["rekey", "-f", workspace.root + "/tokens.yaml", "--state-dir", workspace.state])
        #expect(partial.status == 1)
        #expect(partial.stderr.contains("rekey re-encrypts the stores the manifests name, so it needs all of them"), "\(partial.stderr)")
        #expect(Self.masterKey(workspace) == oldKey && !FileManager.default.fileExists(atPath: workspace.state + "/master.key.new"))
    }

    @Test func aTamperedAuditLogIsNotResealedAndNothingChanges() async throws {
        let workspace = try Self.applied()
        defer { workspace.remove() }
        let oldKey = try #require(Self.masterKey(workspace))
        let tamper = try AuditAndCanaryTests.sqlite(workspace.state + "/state.db",
                                                    "UPDATE audit SET entry = replace(entry, 'apply', 'APPLY') WHERE sequence = 1")
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let vault = Self.bytes(workspace.root + "/secrets.vault")

        let rekey = try workspace.run(["rekey", "-f", "DIR"])
        #expect(rekey.status == 1)
        #expect(rekey.stderr.contains("the audit log fails verification under the current master key (entry #1 was edited or forged"),
                "\(rekey.stderr)")
        #expect(Self.masterKey(workspace) == oldKey)
        #expect(!FileManager.default.fileExists(atPath: workspace.state + "/master.key.new"))
        #expect(Self.bytes(workspace.root + "/secrets.vault") == vault)
        let audit = try workspace.run(["audit", "-f", "DIR", "--verify"])
        #expect(audit.status == 1 && (audit.stdout + audit.stderr).contains("entry #1 was edited or forged"), "\(audit.stdout)\(audit.stderr)")
    }

    @Test func rekeyNeedsAppliedState() throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web")))
        let rekey = try workspace.run(["rekey", "-f", "DIR"])
        #expect(rekey.status == 1)
        #expect(rekey.stderr.contains("there is no state in"), "\(rekey.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workspace.state), "rekey creates no state")
    }
}
