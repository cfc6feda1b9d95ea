import Crypto
import Foundation
import TokenctlDrivers
import TokenctlModel

/// An AES-256-GCM encrypted file of secrets.
///
/// File format, version 2: the 8 bytes `TKCSTORE`, a format version byte (2), a 16-byte key check (the first half
/// of HMAC-SHA256 of a fixed label under the key), then an AES-GCM sealed box (12-byte nonce, ciphertext, 16-byte
/// tag) of a JSON object mapping keys to secrets. The header is authenticated as associated data. The key check
/// tells a wrong key from a damaged file, which AES-GCM alone cannot. Version 1 (no key check) is still read, and
/// rewritten as version 2 by the next write. Every write replaces the whole file atomically (mode 0600).
package actor EncryptedFileStore: ReadableSecretStore {
    /// The file.
    package let path: String
    private let key: SymmetricKey
    private let keyReference: String

    static let magic = Array("TKCSTORE".utf8)
    static let formatVersion: UInt8 = 2
    static let keyCheckLength = 16

    /// A value that identifies the key without revealing anything about it.
    static func keyCheck(_ key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data("tokenctl-store-key-check-v2".utf8), using: key).prefix(keyCheckLength))
    }

    /// The key check as text: names a key (in state settings and messages) without revealing anything about it.
    package static func keyIdentifier(_ key: SymmetricKey) -> String { Hex.string(keyCheck(key)) }

    /// Opens a store at `path` with a 32-byte key; `keyReference` names where the key came from, for messages.
    package init(path: String, key: SymmetricKey, keyReference: String) {
        self.path = path
        self.key = key
        self.keyReference = keyReference
    }

    /// Reads a 32-byte key from its text: base64 (44 characters) or hex (64).
    package static func key(fromText text: String, reference: String) throws(StoreError) -> SymmetricKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let data = Data(base64Encoded: trimmed), data.count == 32 { return SymmetricKey(data: data) }
        if trimmed.utf8.count == 64, let data = Data(hex: trimmed) { return SymmetricKey(data: data) }
        throw .keyUnavailable(reference: reference,
                              detail: "it must be 32 bytes written as base64 or hex; make one with: openssl rand -base64 32")
    }

    package func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        var entries = try load()
        for key in removes { entries.removeValue(forKey: key) }
        var fingerprints: [String: String] = [:]
        for (key, secret) in puts {
            entries[key] = secret.withRevealed { $0 }
            fingerprints[key] = contentFingerprint(key: key, secret: secret)
        }
        try save(entries)
        return fingerprints
    }

    package func fingerprint(key: String) async throws(StoreError) -> String? {
        try load()[key].map { contentFingerprint(key: key, secret: Secret($0)) }
    }

    package func read(key: String) async throws(StoreError) -> Secret? {
        try load()[key].map(Secret.init)
    }

    /// One decryption of the file for all the keys.
    package func read(keys: [String]) async throws(StoreError) -> [String: Secret] {
        let entries = try load()
        var secrets: [String: Secret] = [:]
        for key in keys { if let value = entries[key] { secrets[key] = Secret(value) } }
        return secrets
    }

    /// Every key the store holds (for tests and inventories; never the values).
    package func keys() throws(StoreError) -> [String] { try load().keys.sorted() }

    /// What rotating the key of the file does, or did.
    package enum Reencryption: Sendable, Equatable {
        /// The file opens with this store's key and is (or was) written again under the new one.
        case reencrypted(entries: Int)
        /// The file is already under the new key: an earlier, interrupted rotation got this far.
        case alreadyUnderNewKey
        /// There is no file yet.
        case absent
    }

    /// What `reencrypt(into:)` would do, changing nothing: `tokenctl rekey` checks every store before it changes any.
    package func reencryption(into target: EncryptedFileStore) async throws(StoreError) -> Reencryption {
        try await pendingReencryption(into: target).outcome
    }

    /// Decrypts the file with this store's key and writes it again, atomically, through `target`: the same file
    /// under a new key. Idempotent: a file already under the target's key is left as it is.
    package func reencrypt(into target: EncryptedFileStore) async throws(StoreError) -> Reencryption {
        let pending = try await pendingReencryption(into: target)
        if let entries = pending.entries { try await target.replaceAll(entries) }
        return pending.outcome
    }

    /// What re-encrypting into `target` comes to, with the entries to write when there is something to do.
    private func pendingReencryption(into target: EncryptedFileStore) async throws(StoreError) -> (outcome: Reencryption, entries: [String: String]?) {
        guard FileManager.default.fileExists(atPath: path) else { return (.absent, nil) }
        if try await target.isUnderItsKey() { return (.alreadyUnderNewKey, nil) }
        let entries = try load()
        return (.reencrypted(entries: entries.count), entries)
    }

    /// Whether the file's header carries this store's key check.
    func isUnderItsKey() throws(StoreError) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, detail: "cannot read it; check its permissions")
        }
        let bytes = [UInt8](data)
        let headerLength = 9 + Self.keyCheckLength
        guard bytes.count >= headerLength, Array(bytes[0..<8]) == Self.magic, bytes[8] == Self.formatVersion else { return false }
        return Array(bytes[9..<headerLength]) == Self.keyCheck(key)
    }

    func replaceAll(_ entries: [String: String]) throws(StoreError) { try save(entries) }

    private func load() throws(StoreError) -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, detail: "cannot read it; check its permissions")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 9 + 28, Array(bytes[0..<8]) == Self.magic else {
            throw .corrupt(path: path, detail: "no tokenctl store header")
        }
        let version = bytes[8]
        guard version == 1 || version == Self.formatVersion else {
            throw .corrupt(path: path, detail: "format version \(version) is newer than this tokenctl reads; upgrade tokenctl")
        }
        let headerLength = version == 1 ? 9 : 9 + Self.keyCheckLength
        guard bytes.count >= headerLength + 28 else { throw .corrupt(path: path, detail: "truncated") }
        if version == Self.formatVersion, Array(bytes[9..<headerLength]) != Self.keyCheck(key) {
            throw .wrongKey(path: path, reference: keyReference)
        }
        let header = Data(bytes[0..<headerLength])
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.SealedBox(combined: Data(bytes[headerLength...]))
        } catch {
            throw .corrupt(path: path, detail: "truncated")
        }
        let plaintext: Data
        do {
            plaintext = try AES.GCM.open(sealed, using: key, authenticating: header)
        } catch {
            // With a key check that matched, the key is right: the bytes were changed.
            if version == 1 { throw .wrongKeyOrCorrupt(path: path, reference: keyReference) }
            throw .corrupt(path: path, detail: "its contents fail authentication, so the file was damaged or altered")
        }
        guard let entries = try? JSONDecoder().decode([String: String].self, from: plaintext) else {
            throw .corrupt(path: path, detail: "its contents do not decode")
        }
        return entries
    }

    private func save(_ entries: [String: String]) throws(StoreError) {
        let header = Data(Self.magic + [Self.formatVersion] + Self.keyCheck(key))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let plaintext = try? encoder.encode(entries) else { throw .corrupt(path: path, detail: "cannot encode the entries") }
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.seal(plaintext, using: key, authenticating: header)
        } catch {
            throw .io(path: path, detail: "encryption failed")
        }
        guard let combined = sealed.combined else { throw .io(path: path, detail: "encryption failed") }
        try atomicWrite(header + combined, to: path)
    }
}

extension Data {
    init?(hex: String) {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        self.init(bytes)
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 97...102: byte - 87
        case 65...70: byte - 55
        default: nil
        }
    }
}
