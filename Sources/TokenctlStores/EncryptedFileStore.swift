import Crypto
import Foundation
import TokenctlDrivers
import TokenctlModel

/// An AES-256-GCM encrypted file of secrets.
///
/// File format, version 3: the 8 bytes `TKCSTORE`, a format version byte (3), a 16-byte key check (the first half
/// of HMAC-SHA256 of a fixed label under the key), then a log of segments. Each segment is a 4-byte big-endian length
/// and an AES-GCM sealed box (12-byte nonce, ciphertext, 16-byte tag) of puts and removes (see `SegmentCodec`); the
/// header and the segment's position in the log are its associated data, so segments cannot be reordered, repeated
/// or moved between files. A write appends one segment and fsyncs it: its cost grows with the batch, not with what the
/// file already holds. A segment cut short by a crash (the file ends inside it) is a write that never happened and is
/// dropped by the next write, which rewrites the file; a complete segment that fails authentication is damage.
/// Once dead entries outweigh live ones, the next write compacts the file into one segment (atomically, mode 0600).
/// The key check tells a wrong key from a damaged file, which AES-GCM alone cannot. Versions 1 (no key check) and
/// 2 (one sealed JSON object) are still read, and rewritten as version 3 by the next write.
package actor EncryptedFileStore: ReadableSecretStore {
    /// The file.
    package let path: String
    private let key: SymmetricKey
    private let keyReference: String
    /// The file as last read or written by this store; reused while the file is unchanged on disk.
    private var cache: LoadedFile?

    static let magic = Array("TKCSTORE".utf8)
    static let formatVersion: UInt8 = 3
    static let keyCheckLength = 16
    static let headerLength = 9 + keyCheckLength
    /// Compaction rewrites the file once it exceeds twice its live content and this many bytes.
    static let compactionFloor = 1 << 20

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
        try withWriteLock { () throws(StoreError) in try writeLocked(puts: puts, removes: removes) }
    }

    /// Runs `body` holding an exclusive lock on the store's directory: writers in other processes (two state directories
    /// sharing a store file, say) take turns, so no two appends claim the same place in the log and no rewrite drops
    /// another's append in progress. Readers take no lock: they ignore an append in progress as they would a cut-short one.
    private func withWriteLock<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let descriptor = Glibc.open(directory, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw .io(path: path, detail: "cannot open its directory: " + String(cString: strerror(errno))) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .io(path: path, detail: "cannot lock its directory: " + String(cString: strerror(errno))) }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    private func writeLocked(puts: [String: Secret], removes: [String]) throws(StoreError) -> [String: String] {
        var fingerprints: [String: String] = [:]
        for (key, secret) in puts { fingerprints[key] = contentFingerprint(key: key, secret: secret) }
        // A second attempt only when the file changed between reading and appending (a writer that takes no lock).
        for _ in 0..<2 {
            var file = try load()
            // Out of the cache while it changes, so that its table is changed in place: with the cache still holding it,
            // every write copied the whole table, which made an apply's store writes grow with everything written before.
            // A write that fails leaves no cache, and the next one reads the file again.
            cache = nil
            var segment = SegmentCodec.Writer()
            for key in removes where file.entries[key] != nil || puts[key] != nil {
                segment.remove(key)
                file.remove(key)
            }
            for (key, secret) in puts.sorted(by: { $0.key < $1.key }) {
                secret.withRevealed { value in
                    segment.put(key, value)
                    file.put(key, value)
                }
            }
            if segment.isEmpty && file.identity != nil {
                cache = file
                return fingerprints
            }
            if file.needsRewrite || file.size > max(2 * file.liveBytes, Self.compactionFloor) {
                try rewrite(&file)
            } else if try !append(segment.bytes, to: &file) {
                cache = nil
                continue
            }
            cache = file
            return fingerprints
        }
        throw .io(path: path, detail: "another process kept changing it while this one wrote; make sure one tokenctl at a time writes it")
    }

    package func fingerprint(key: String) async throws(StoreError) -> String? {
        try load().entries[key].map { contentFingerprint(key: key, secret: Secret($0)) }
    }

    package func read(key: String) async throws(StoreError) -> Secret? {
        try load().entries[key].map(Secret.init)
    }

    /// One decryption of the file for all the keys.
    package func read(keys: [String]) async throws(StoreError) -> [String: Secret] {
        let entries = try load().entries
        var secrets: [String: Secret] = [:]
        for key in keys { if let value = entries[key] { secrets[key] = Secret(value) } }
        return secrets
    }

    /// Every key the store holds (for tests and inventories; never the values).
    package func keys() throws(StoreError) -> [String] { try load().entries.keys.sorted() }

    /// How many segments the file holds (for tests of the format).
    package func segmentCount() throws(StoreError) -> Int { try load().segments }

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
        cache = nil
        return pending.outcome
    }

    /// What re-encrypting into `target` comes to, with the entries to write when there is something to do.
    private func pendingReencryption(into target: EncryptedFileStore) async throws(StoreError) -> (outcome: Reencryption, entries: [String: String]?) {
        guard FileManager.default.fileExists(atPath: path) else { return (.absent, nil) }
        if try await target.isUnderItsKey() { return (.alreadyUnderNewKey, nil) }
        let entries = try load().entries
        return (.reencrypted(entries: entries.count), entries)
    }

    /// Whether the file's header carries this store's key check.
    func isUnderItsKey() throws(StoreError) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, detail: "cannot read it; check its permissions")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= Self.headerLength, Array(bytes[0..<8]) == Self.magic, bytes[8] == 2 || bytes[8] == Self.formatVersion else {
            return false
        }
        return Array(bytes[9..<Self.headerLength]) == Self.keyCheck(key)
    }

    func replaceAll(_ entries: [String: String]) throws(StoreError) {
        try withWriteLock { () throws(StoreError) in
            var file = LoadedFile(entries: [:], identity: nil, size: 0, segments: 0, needsRewrite: true)
            for (key, value) in entries { file.put(key, value) }
            try rewrite(&file)
            cache = file
        }
    }

    // MARK: Reading

    /// The file's contents, from the cache while the file on disk is the one this store last saw.
    private func load() throws(StoreError) -> LoadedFile {
        let identity = FileStamp(path: path)
        if let cache, let identity, cache.identity == identity { return cache }
        guard let identity else {
            if FileManager.default.fileExists(atPath: path) { throw .io(path: path, detail: "cannot read it; check its permissions") }
            return LoadedFile(entries: [:], identity: nil, size: 0, segments: 0, needsRewrite: true)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .io(path: path, detail: "cannot read it; check its permissions")
        }
        var file: LoadedFile
        do {
            file = try data.withUnsafeBytes { raw in try parse(raw.bindMemory(to: UInt8.self)) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
        file.identity = identity
        cache = file
        return file
    }

    private func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(StoreError) -> LoadedFile {
        guard bytes.count >= 9 + 28, Array(bytes[0..<8]) == Self.magic else {
            throw .corrupt(path: path, detail: "no tokenctl store header")
        }
        let version = bytes[8]
        guard (1...Self.formatVersion).contains(version) else {
            throw .corrupt(path: path, detail: "format version \(version) is newer than this tokenctl reads; upgrade tokenctl")
        }
        let headerLength = version == 1 ? 9 : Self.headerLength
        guard bytes.count >= headerLength + (version == Self.formatVersion ? 0 : 28) else { throw .corrupt(path: path, detail: "truncated") }
        if version != 1, Array(bytes[9..<headerLength]) != Self.keyCheck(key) {
            throw .wrongKey(path: path, reference: keyReference)
        }
        let header = Data(bytes[0..<headerLength])
        guard version == Self.formatVersion else {
            let plaintext = try open(Data(bytes[headerLength...]), header: header, version: version)
            guard let entries = try? JSONDecoder().decode([String: String].self, from: plaintext) else {
                throw .corrupt(path: path, detail: "its contents do not decode")
            }
            var file = LoadedFile(entries: [:], identity: nil, size: bytes.count, segments: 1, needsRewrite: true)
            for (key, value) in entries { file.put(key, value) }
            return file
        }
        var file = LoadedFile(entries: [:], identity: nil, size: bytes.count, segments: 0, needsRewrite: false)
        var offset = headerLength
        while offset < bytes.count || file.segments == 0 {
            let rest = bytes.count - offset
            let length = rest >= 4 ? bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } : nil
            // An append cut short by a crash: its length or its bytes end early, or the file grew but the data never
            // reached the disk (zeros). Only an append can be cut short: the first segment is written by an atomic
            // replacement, so a file that ends inside it was damaged (a copy cut short), not interrupted.
            if length.map({ rest - 4 < $0 || ($0 < 28 && bytes[offset...].allSatisfy { $0 == 0 }) }) ?? true {
                guard file.segments > 0 else { throw .corrupt(path: path, detail: "truncated: it ends inside its first segment") }
                file.needsRewrite = true
                break
            }
            guard let length, length >= 28 else { throw .corrupt(path: path, detail: "segment \(file.segments + 1) is too short to be one") }
            let sealed = Data(bytes[offset + 4..<offset + 4 + length])
            let plaintext = try open(sealed, header: Self.associatedData(header: header, segment: file.segments), version: version)
            guard SegmentCodec.apply(plaintext, to: &file) else {
                throw .corrupt(path: path, detail: "segment \(file.segments + 1) does not decode")
            }
            file.segments += 1
            offset += 4 + length
        }
        return file
    }

    private func open(_ combined: Data, header: Data, version: UInt8) throws(StoreError) -> Data {
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.SealedBox(combined: combined)
        } catch {
            throw .corrupt(path: path, detail: "truncated")
        }
        do {
            return try AES.GCM.open(sealed, using: key, authenticating: header)
        } catch {
            // With a key check that matched, the key is right: the bytes were changed.
            if version == 1 { throw .wrongKeyOrCorrupt(path: path, reference: keyReference) }
            throw .corrupt(path: path, detail: "its contents fail authentication, so the file was damaged or altered")
        }
    }

    // MARK: Writing

    private var header: Data { Data(Self.magic + [Self.formatVersion] + Self.keyCheck(key)) }

    /// The associated data of a segment: the header and the segment's position.
    static func associatedData(header: Data, segment: Int) -> Data {
        header + withUnsafeBytes(of: UInt64(segment).bigEndian) { Data($0) }
    }

    private func sealSegment(_ plaintext: [UInt8], index: Int, header: Data) throws(StoreError) -> Data {
        do {
            guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: Self.associatedData(header: header, segment: index)).combined else {
                throw StoreError.io(path: path, detail: "encryption failed")
            }
            return withUnsafeBytes(of: UInt32(combined.count).bigEndian) { Data($0) } + combined
        } catch {
            throw .io(path: path, detail: "encryption failed")
        }
    }

    /// Replaces the file with one segment of every live entry, atomically.
    private func rewrite(_ file: inout LoadedFile) throws(StoreError) {
        var segment = SegmentCodec.Writer()
        for (key, value) in file.entries.sorted(by: { $0.key < $1.key }) { segment.put(key, value) }
        let header = header
        let data = header + (try sealSegment(segment.bytes, index: 0, header: header))
        try atomicWrite(data, to: path)
        file.segments = 1
        file.size = data.count
        file.needsRewrite = false
        file.identity = FileStamp(path: path)
    }

    /// Appends one segment and makes it durable before returning; false, writing nothing, when the file is no longer
    /// the one `file` describes (another process wrote it).
    private func append(_ plaintext: [UInt8], to file: inout LoadedFile) throws(StoreError) -> Bool {
        let data = try sealSegment(plaintext, index: file.segments, header: header)
        let descriptor = Glibc.open(path, O_WRONLY | O_APPEND)
        guard descriptor >= 0 else { throw .io(path: path, detail: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, UInt64(info.st_ino) == file.identity?.inode, Int(info.st_size) == file.size else { return false }
        if let failure = writeAndSync(data, to: descriptor) {
            // Whatever part of the segment reached the disk is a cut-short segment: the next write rewrites the file.
            cache = nil
            throw .io(path: path, detail: failure)
        }
        file.segments += 1
        file.size += data.count
        // The stamp of what this descriptor wrote, not of whatever the path holds by now.
        guard fstat(descriptor, &info) == 0 else { throw .io(path: path, detail: String(cString: strerror(errno))) }
        file.identity = FileStamp(path: path, info: info)
        return true
    }
}

/// The decrypted contents of a store file and what is known about the file itself.
struct LoadedFile {
    var entries: [String: String]
    var identity: FileStamp?
    /// The file's length in bytes.
    var size: Int
    var segments: Int
    /// The file must be rewritten before anything is appended (an older format, a cut-short segment, no file).
    var needsRewrite: Bool
    /// The bytes the live entries take, to decide when to compact.
    var liveBytes = 0

    init(entries: [String: String], identity: FileStamp?, size: Int, segments: Int, needsRewrite: Bool) {
        self.entries = entries
        self.identity = identity
        self.size = size
        self.segments = segments
        self.needsRewrite = needsRewrite
    }

    mutating func put(_ key: String, _ value: String) {
        if let old = entries.updateValue(value, forKey: key) { liveBytes -= key.utf8.count + old.utf8.count + 9 }
        liveBytes += key.utf8.count + value.utf8.count + 9
    }

    mutating func remove(_ key: String) {
        if let old = entries.removeValue(forKey: key) { liveBytes -= key.utf8.count + old.utf8.count + 9 }
    }
}

/// The plaintext of a segment: a sequence of operations, each a tag byte (1 put, 2 remove), a 4-byte big-endian key
/// length and the key, and for a put a 4-byte value length and the value.
enum SegmentCodec {
    struct Writer {
        private(set) var bytes: [UInt8] = []
        var isEmpty: Bool { bytes.isEmpty }

        mutating func put(_ key: String, _ value: String) {
            bytes.append(1)
            field(key)
            field(value)
        }

        mutating func remove(_ key: String) {
            bytes.append(2)
            field(key)
        }

        private mutating func field(_ text: String) {
            let utf8 = text.utf8
            let count = UInt32(utf8.count)
            bytes.append(contentsOf: [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)])
            bytes.append(contentsOf: utf8)
        }
    }

    /// Applies a segment's operations; false when it does not decode.
    static func apply(_ plaintext: Data, to file: inout LoadedFile) -> Bool {
        plaintext.withUnsafeBytes { raw -> Bool in
            let bytes = raw.bindMemory(to: UInt8.self)
            var offset = 0
            func field() -> String? {
                guard bytes.count - offset >= 4 else { return nil }
                let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
                offset += 4
                guard bytes.count - offset >= length else { return nil }
                defer { offset += length }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[offset..<offset + length]), as: UTF8.self)
            }
            while offset < bytes.count {
                let tag = bytes[offset]
                offset += 1
                guard let key = field() else { return false }
                switch tag {
                case 1:
                    guard let value = field() else { return false }
                    file.put(key, value)
                case 2:
                    file.remove(key)
                default:
                    return false
                }
            }
            return true
        }
    }
}

extension Data {
    init?(hex: String) {
        guard let bytes = Hex.bytes(hex) else { return nil }
        self.init(bytes)
    }
}
