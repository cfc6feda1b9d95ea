import Foundation
import TokenctlModel

/// Where delivered secrets live. Writes are batched: one call writes many keys at once, durably.
///
/// ```swift
/// let store = try EncryptedFileStore(path: "secrets.vault", key: masterKey)
/// let fingerprints = try await store.write(puts: ["payments/api": secret], removes: [])
/// ```
public protocol SecretStore: Sendable {
    /// Writes `puts` and removes `removes` in one durable step; returns the content fingerprint of each key put.
    func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String]
    /// The fingerprint of what a key holds, or nil when it holds nothing.
    func fingerprint(key: String) async throws(StoreError) -> String?
    /// The secret under a key, or nil (only for `secret get`, `exec` and redelivery).
    func read(key: String) async throws(StoreError) -> Secret?
    /// The secrets under many keys at once (for `state rebuild`); keys that hold nothing are absent.
    func read(keys: [String]) async throws(StoreError) -> [String: Secret]
    /// The fingerprints of what many keys hold (for `--refresh`); keys that hold nothing are absent.
    func fingerprints(keys: [String]) async throws(StoreError) -> [String: String]
}

extension SecretStore {
    public func fingerprints(keys: [String]) async throws(StoreError) -> [String: String] {
        var fingerprints: [String: String] = [:]
        for (key, secret) in try await read(keys: keys) { fingerprints[key] = contentFingerprint(key: key, secret: secret) }
        return fingerprints
    }

    public func read(keys: [String]) async throws(StoreError) -> [String: Secret] {
        var secrets: [String: Secret] = [:]
        for key in keys { if let secret = try await read(key: key) { secrets[key] = secret } }
        return secrets
    }
}

/// Why a store failed; messages name the file and what to do, never a secret.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
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

    public var description: String {
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
public func contentFingerprint(key: String, secret: Secret) -> String {
    secret.withRevealed { Digest.sha256Hex("tokenctl-delivery\u{0}\(key)\u{0}\($0)") }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the directory.
public func atomicWrite(_ data: Data, to path: String, mode: mode_t = 0o600) throws(StoreError) {
    let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
    let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard descriptor >= 0 else { throw .io(path: path, detail: String(cString: strerror(errno))) }
    var failure: String?
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = Glibc.write(descriptor, raw.baseAddress?.advanced(by: offset), raw.count - offset)
            if written <= 0 {
                failure = String(cString: strerror(errno))
                return
            }
            offset += written
        }
    }
    if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
    fchmod(descriptor, mode)
    close(descriptor)
    if let failure {
        unlink(temporary)
        throw .io(path: path, detail: failure)
    }
    guard rename(temporary, path) == 0 else {
        let detail = String(cString: strerror(errno))
        unlink(temporary)
        throw .io(path: path, detail: detail)
    }
    let directoryDescriptor = open(directory, O_RDONLY)
    if directoryDescriptor >= 0 {
        fsync(directoryDescriptor)
        close(directoryDescriptor)
    }
}
