import Crypto
import Foundation
import GRDB
import TestSupport
import Testing
import TokenctlBuiltinIssuer
import TokenctlDrivers
import TokenctlManifest
import TokenctlModel
import TokenctlStores

func scratchDirectory() -> String {
    Scratch.directory("tokenctl-unit")
}

@Suite struct BuiltinAuthorityTests {
    let now = Timestamp(secondsSinceEpoch: 1_796_040_000)

    func request(_ key: String? = nil, expiresAt: Timestamp? = nil) -> IssueRequest {
        IssueRequest(issuer: "local", owner: "team-a", subject: "payments/api", scopes: ["orders:read", "orders:write"],
                     expiresAt: expiresAt, idempotencyKey: key)
    }

    @Test func tokensCarryPrefixAndChecksum() {
        let token = TokenFormat.generate(prefix: "acme")
        #expect(token.hasPrefix("acme_") && token.count == 5 + 43 + 6)
        #expect(TokenFormat.hasValidChecksum(token))
        var mistyped = Array(token)
        mistyped[10] = mistyped[10] == "a" ? "b" : "a"
        #expect(!TokenFormat.hasValidChecksum(String(mistyped)))
        #expect(!TokenFormat.hasValidChecksum("acme_short"))
        #expect(TokenFormat.generate(prefix: "tkc") != TokenFormat.generate(prefix: "tkc"))
        #expect(SecretScanner.finding(in: token) != nil, "secret scanners recognise tokenctl tokens")
    }

    @Test func verifiesValidUnknownExpiredAndRevoked() throws {
        let authority = try BuiltinAuthority(directory: scratchDirectory(), mode: .readWrite)
        let issued = try authority.issue(request(expiresAt: now + TokenDuration(seconds: 3_600)), now: now)
        let secret = try #require(issued.secret)
        guard case .valid(let credential) = try authority.verify(secret, now: now) else { Issue.record("not valid"); return }
        #expect(credential.credentialID == issued.credentialID && credential.scopes == ["orders:read", "orders:write"])
        #expect(try authority.lastUsed(issuer: "local")[issued.credentialID] == now)
        #expect(try authority.verify(secret, now: now + TokenDuration(seconds: 3_600)) == .invalid(.expired))
        #expect(try authority.verify(Secret(TokenFormat.generate(prefix: "tkc")), now: now) == .invalid(.unknown))
        #expect(try authority.verify(Secret("tkc_" + String(repeating: "a", count: 49)), now: now) == .invalid(.badChecksum))
        try authority.revoke(credentialID: issued.credentialID, now: now)
        try authority.revoke(credentialID: issued.credentialID, now: now)  // twice is fine
        #expect(try authority.verify(secret, now: now) == .invalid(.revoked))
        #expect(try authority.list(issuer: "local").map(\.revoked) == [true])
    }

    @Test func storesOnlyHashes() throws {
        let directory = scratchDirectory()
        let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
        let secret = try #require(try authority.issue(request(), now: now).secret)
        let database = String(decoding: try Data(contentsOf: URL(fileURLWithPath: authority.path)), as: UTF8.self)
            + ((try? String(contentsOfFile: authority.path + "-wal", encoding: .isoLatin1)) ?? "")
        let found = secret.withRevealed { database.contains($0) || database.contains(String($0.dropFirst(4).prefix(20))) }
        #expect(!found)
        #expect(secret.description == "(sensitive)" && "\(secret)" == "(sensitive)" && String(reflecting: secret) == "(sensitive)")
    }

    @Test func idempotencyKeysNeverIssueTwice() throws {
        let authority = try BuiltinAuthority(directory: scratchDirectory(), mode: .readWrite)
        let first = try authority.issue(request("intent-1"), now: now)
        let again = try authority.issue(request("intent-1"), now: now)
        #expect(first.secret != nil && again.secret == nil)
        #expect(again.credentialID == first.credentialID)
        #expect(try authority.credential(forIdempotencyKey: "intent-1") == first.credentialID)
        #expect(try authority.list(issuer: "local").count == 1)
    }
}


@Suite struct EncryptedFileStoreTests {
    @Test func roundTripsAndFormat() async throws {
        let key = SymmetricKey(size: .bits256)
        let path = scratchDirectory() + "/secrets.vault"
        let store = EncryptedFileStore(path: path, key: key, keyReference: "env:K")
        let fingerprints = try await store.write(puts: ["a": Secret("value-a"), "b": Secret("value-b")], removes: [])
        #expect(fingerprints["a"] == contentFingerprint(key: "a", secret: Secret("value-a")))
        #expect(try await store.read(key: "a")?.withRevealed { $0 } == "value-a")
        #expect(try await store.fingerprint(key: "b") == contentFingerprint(key: "b", secret: Secret("value-b")))
        _ = try await store.write(puts: [:], removes: ["a"])
        #expect(try await store.read(key: "a") == nil)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.prefix(8) == Data("TKCSTORE".utf8) && bytes[8] == 3)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("value-b"))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent) == ["secrets.vault"],
                "no temporary file is left behind")
    }

    @Test func wrongKeyIsAClearErrorAndOverwritesNothing() async throws {
        let key = SymmetricKey(size: .bits256)
        let path = scratchDirectory() + "/secrets.vault"
        _ = try await EncryptedFileStore(path: path, key: key, keyReference: "env:K").write(puts: ["a": Secret("x")], removes: [])
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let wrong = EncryptedFileStore(path: path, key: SymmetricKey(size: .bits256), keyReference: "env:OTHER")
        await #expect(throws: StoreError.wrongKey(path: path, reference: "env:OTHER")) {
            _ = try await wrong.write(puts: ["b": Secret("y")], removes: [])
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let header = StoreError.wrongKey(path: path, reference: "env:OTHER").description
        #expect(header.contains("nothing was overwritten"))
    }

    @Test func keysComeAsBase64OrHex() throws {
        let raw = Data((0..<32).map { UInt8($0) })
        _ = try EncryptedFileStore.key(fromText: raw.base64EncodedString(), reference: "env:K")
        _ = try EncryptedFileStore.key(fromText: raw.map { String(format: "%02x", $0) }.joined(), reference: "env:K")
        #expect(throws: StoreError.self) { try EncryptedFileStore.key(fromText: "hunter2", reference: "env:K") }
    }

    @Test func dotenvNamesAndMode() async throws {
        let path = scratchDirectory() + "/app.env"
        let store = DotenvStore(path: path)
        _ = try await store.write(puts: ["payments/orders-api-ci": Secret("s1"), "9lives": Secret("s2")], removes: [])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "PAYMENTS_ORDERS_API_CI=s1\n_9LIVES=s2\n")
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        _ = try await store.write(puts: [:], removes: ["9lives"])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "PAYMENTS_ORDERS_API_CI=s1\n")
    }
}

/// An authority database written by a newer tokenctl is refused, in both modes, and left untouched.
@Suite struct BuiltinAuthorityVersionTests {
    @Test func aNewerSchemaIsRefused() throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try BuiltinAuthority(directory: directory, mode: .readWrite)
        let queue = try DatabaseQueue(path: directory + "/" + BuiltinAuthority.fileName)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9-from-the-future')") }
        try queue.close()
        for mode in [BuiltinAuthority.Mode.readOnly, .readWrite] {
            #expect {
                _ = try BuiltinAuthority(directory: directory, mode: mode)
            } throws: { error in
                guard case .newerVersion(_, let unknown) = error as? BuiltinAuthority.AuthorityError else { return false }
                return unknown == ["v9-from-the-future"] && "\(error)".contains("upgrade tokenctl")
            }
        }
    }
}

/// The encrypted store tells a wrong key from a damaged file, and still reads (and upgrades) its first format.
@Suite struct EncryptedStoreIntegrityTests {
    /// Key bytes rather than a key: each store gets its own `SymmetricKey`, which is not `Sendable`.
    static func written() async throws -> (path: String, key: Data) {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let path = scratchDirectory() + "/secrets.vault"
        _ = try await EncryptedFileStore(path: path, key: SymmetricKey(data: key), keyReference: "env:K").write(puts: ["a": Secret("x")], removes: [])
        return (path, key)
    }

    static func flip(_ path: String, at offset: (Int) -> Int) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset(bytes.count)] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func aFlippedBitIsReportedAsDamageNotAsAWrongKey() async throws {
        let (path, key) = try await Self.written()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try Self.flip(path) { $0 - 20 }
        let store = EncryptedFileStore(path: path, key: SymmetricKey(data: key), keyReference: "env:K")
        await #expect {
            _ = try await store.read(key: "a")
        } throws: { error in
            guard case .corrupt(_, let detail) = error as? StoreError else { return false }
            return detail.contains("damaged or altered")
        }
        await #expect(throws: StoreError.wrongKey(path: path, reference: "env:OTHER")) {
            _ = try await EncryptedFileStore(path: path, key: SymmetricKey(size: .bits256), keyReference: "env:OTHER").read(key: "a")
        }
    }

    @Test func theFirstFormatIsReadAndUpgradedByTheNextWrite() async throws {
        let keyBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault"
        let header = Data(Array("TKCSTORE".utf8) + [1])
        let sealed = try AES.GCM.seal(Data(#"{"a":"x"}"#.utf8), using: SymmetricKey(data: keyBytes), authenticating: header)
        try (header + (sealed.combined ?? Data())).write(to: URL(fileURLWithPath: path))
        let store = EncryptedFileStore(path: path, key: SymmetricKey(data: keyBytes), keyReference: "env:K")
        #expect(try await store.read(key: "a")?.withRevealed { $0 } == "x")
        _ = try await store.write(puts: ["b": Secret("y")], removes: [])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path))[8] == 3)
        #expect(try await store.read(key: "a")?.withRevealed { $0 } == "x")

        // A damaged first-format file cannot say which it is, and says so.
        try (header + (sealed.combined ?? Data())).write(to: URL(fileURLWithPath: path))
        try Self.flip(path) { $0 - 20 }
        await #expect(throws: StoreError.wrongKeyOrCorrupt(path: path, reference: "env:K")) { _ = try await store.read(key: "a") }
    }
}
