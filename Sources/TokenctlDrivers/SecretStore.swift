import TokenctlModel

/// Where delivered secrets are written. Writes are batched: one call writes many keys at once, durably.
///
/// A store that can also give secrets back conforms to `ReadableSecretStore`; one that cannot (a webhook, a secret
/// manager without read permission, an `exec` program) is write-only, and tokenctl trusts its own records of it.
///
/// ```swift
/// let store = try EncryptedFileStore(path: "secrets.vault", key: masterKey)
/// let fingerprints = try await store.write(puts: ["payments/api": secret], removes: [])
/// ```
package protocol SecretStore: Sendable {
    /// Writes `puts` and removes `removes` in one durable step; returns the content fingerprint of each key put.
    func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String]
}

/// A store whose secrets can be read back (capability `readable`).
package protocol ReadableSecretStore: SecretStore {
    /// The fingerprint of what a key holds, or nil when it holds nothing.
    func fingerprint(key: String) async throws(StoreError) -> String?
    /// The secret under a key, or nil (only for `secret get`, `exec` and redelivery).
    func read(key: String) async throws(StoreError) -> Secret?
    /// The secrets under many keys at once (for `state rebuild`); keys that hold nothing are absent.
    func read(keys: [String]) async throws(StoreError) -> [String: Secret]
    /// The fingerprints of what many keys hold (for `--refresh`); keys that hold nothing are absent.
    func fingerprints(keys: [String]) async throws(StoreError) -> [String: String]
}

extension ReadableSecretStore {
    package func fingerprints(keys: [String]) async throws(StoreError) -> [String: String] {
        var fingerprints: [String: String] = [:]
        for (key, secret) in try await read(keys: keys) { fingerprints[key] = contentFingerprint(key: key, secret: secret) }
        return fingerprints
    }

    package func read(keys: [String]) async throws(StoreError) -> [String: Secret] {
        var secrets: [String: Secret] = [:]
        for key in keys { if let secret = try await read(key: key) { secrets[key] = secret } }
        return secrets
    }
}

/// Why a store failed; messages name the file and what to do, never a secret.
package enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file exists but cannot be decrypted with the key given.
    case wrongKey(path: String, reference: String)
    /// The file is not a tokenctl store or is damaged.
    case corrupt(path: String, detail: String)
    /// A file of the old format (no key check) fails authentication: the key is wrong or the file is damaged.
    case wrongKeyOrCorrupt(path: String, reference: String)
    /// The file or its directory cannot be read or written.
    case io(path: String, detail: String)
    /// The encryption key cannot be obtained.
    case keyUnavailable(reference: String, detail: String)

    package var description: String {
        switch self {
        case let .wrongKey(path, reference):
            "cannot decrypt '\(path)' with the key from \(reference): the key is wrong or the file was written with another one; "
                + "supply the right key (nothing was overwritten)"
        case let .wrongKeyOrCorrupt(path, reference):
            "cannot decrypt '\(path)' with the key from \(reference): the file is damaged or the key is wrong (this older store "
                + "format cannot tell which); supply the key it was written with, or restore the file from a backup (nothing was overwritten)"
        case let .corrupt(path, detail):
            "'\(path)' is not a readable tokenctl store (\(detail)); restore it from a backup or move it away (nothing was overwritten)"
        case let .io(path, detail):
            "cannot write '\(path)' (\(detail)); check that the directory exists, is writable and has free space, then re-run"
        case let .keyUnavailable(reference, detail):
            "cannot get the encryption key \(reference) (\(detail))"
        }
    }
}

/// A content fingerprint: a hash of the key and the secret, never the secret.
package func contentFingerprint(key: String, secret: Secret) -> String {
    secret.withRevealed { Digest.sha256Hex("tokenctl-delivery\u{0}\(key)\u{0}\($0)") }
}

