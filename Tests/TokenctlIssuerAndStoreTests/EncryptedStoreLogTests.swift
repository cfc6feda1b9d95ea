import Crypto
import Foundation
import Testing
import TokenctlDrivers
import TokenctlModel
import TokenctlStores

/// The encrypted store's log format: a write appends a segment the size of its batch, a segment cut short by a crash
/// is a write that never happened, damage and reordering are caught, dead entries are compacted away, and the previous
/// format is still read.
@Suite struct EncryptedStoreLogTests {
    static func store(_ path: String, _ key: Data) -> EncryptedFileStore {
        EncryptedFileStore(path: path, key: SymmetricKey(data: key), keyReference: "env:K")
    }

    static func newKey() -> Data { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } }

    static func size(_ path: String) throws -> Int { try Data(contentsOf: URL(fileURLWithPath: path)).count }

    static func secrets(_ range: Range<Int>, tag: String = "") -> [String: Secret] {
        Dictionary(uniqueKeysWithValues: range.map { ("team/token-\($0)", Secret("secret-\(tag)\($0)-" + String(repeating: "x", count: 40))) })
    }

    @Test func aWriteAppendsWhatItsBatchHoldsAndNoMore() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<2_000), removes: [])
        let before = try Self.size(path)
        // A new process (a new store) appends one key: the file grows by about that entry, not by a copy of the 2,000.
        _ = try await Self.store(path, key).write(puts: ["team/late": Secret("late-secret")], removes: [])
        let growth = try Self.size(path) - before
        #expect(growth > 0 && growth < 120, "grew by \(growth) bytes")
        let reader = Self.store(path, key)
        #expect(try await reader.segmentCount() == 2)
        #expect(try await reader.keys().count == 2_001)
        #expect(try await reader.read(key: "team/late")?.withRevealed { $0 } == "late-secret")
        _ = try await reader.write(puts: [:], removes: ["team/token-7"])
        #expect(try await Self.store(path, key).read(key: "team/token-7") == nil)
        #expect(try await Self.store(path, key).segmentCount() == 3)
    }

    @Test func aSegmentCutShortByACrashIsAWriteThatNeverHappened() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<10), removes: [])
        let complete = try Data(contentsOf: URL(fileURLWithPath: path))
        _ = try await Self.store(path, key).write(puts: Self.secrets(10..<20), removes: [])
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        // Every point at which the second append could have been cut short (a few of them, spread over the segment).
        for cut in [complete.count + 1, complete.count + 4, complete.count + 30, full.count - 1] {
            try full.prefix(cut).write(to: URL(fileURLWithPath: path))
            let store = Self.store(path, key)
            #expect(try await store.keys().count == 10, "cut at \(cut)")
            #expect(try await store.read(key: "team/token-15") == nil)
            // The next write drops the cut-short segment: the file is whole again, with both writes' keys readable.
            _ = try await store.write(puts: ["team/after": Secret("after-crash")], removes: [])
            let reopened = Self.store(path, key)
            #expect(try await reopened.keys().count == 11)
            #expect(try await reopened.segmentCount() == 1)
        }
    }

    @Test func aFileCutInsideItsFirstSegmentIsDamageAndIsNotOverwritten() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<50), removes: [])
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        // A copy cut short (a full disk, an interrupted restore): only an atomic replacement writes the first segment.
        for cut in [25, 27, 40, whole.count - 1] {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
            let store = Self.store(path, key)
            await #expect(throws: StoreError.self, "cut at \(cut)") { _ = try await store.keys() }
            await #expect(throws: StoreError.self) { _ = try await store.write(puts: ["team/new": Secret("new-secret")], removes: []) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == whole.prefix(cut), "nothing overwritten")
        }
    }

    @Test func aTailOfZerosIsAnAppendThatNeverReachedTheDisk() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<5), removes: [])
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try (whole + Data(repeating: 0, count: 300)).write(to: URL(fileURLWithPath: path))
        let store = Self.store(path, key)
        #expect(try await store.keys().count == 5)
        _ = try await store.write(puts: ["team/after": Secret("after")], removes: [])
        #expect(try await Self.store(path, key).keys().count == 6)
    }

    @Test func damageAndReorderingAreCaught() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<3, tag: "a"), removes: [])
        let first = try Data(contentsOf: URL(fileURLWithPath: path))
        _ = try await Self.store(path, key).write(puts: Self.secrets(0..<3, tag: "b"), removes: [])
        let both = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = first.prefix(25), segmentA = first.dropFirst(25), segmentB = both.dropFirst(first.count)
        // The second segment placed first (an older value replayed over a newer one) fails authentication.
        try (header + segmentB + segmentA).write(to: URL(fileURLWithPath: path))
        await #expect { _ = try await Self.store(path, key).keys() } throws: { error in
            guard case .corrupt(_, let detail) = error as? StoreError else { return false }
            return detail.contains("damaged or altered")
        }
        // A segment repeated is caught the same way.
        try (header + segmentA + segmentA).write(to: URL(fileURLWithPath: path))
        await #expect(throws: StoreError.self) { _ = try await Self.store(path, key).keys() }
        // A flipped bit inside a complete segment is damage, not a cut-short write.
        var flipped = [UInt8](both)
        flipped[first.count + 10] ^= 0x01
        try Data(flipped).write(to: URL(fileURLWithPath: path))
        await #expect(throws: StoreError.self) { _ = try await Self.store(path, key).keys() }
    }

    @Test func deadEntriesAreCompactedAway() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        let store = Self.store(path, key)
        // 100 rotations of 200 secrets: 20,000 entries written, 200 alive.
        for round in 0..<100 { _ = try await store.write(puts: Self.secrets(0..<200, tag: "r\(round)-"), removes: []) }
        let size = try Self.size(path)
        #expect(size < 2 * (1 << 20) + 40_000, "\(size) bytes")
        let reopened = Self.store(path, key)
        #expect(try await reopened.segmentCount() < 100)
        #expect(try await reopened.read(key: "team/token-5")?.withRevealed { $0.hasPrefix("secret-r99-5-") } == true)
        #expect(try await reopened.keys().count == 200)
    }

    @Test func theSecondFormatIsReadAndRewrittenInTheLogFormat() async throws {
        let directory = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secrets.vault", key = Self.newKey()
        let check = Hex.bytes(EncryptedFileStore.keyIdentifier(SymmetricKey(data: key))) ?? []
        let header = Data(Array("TKCSTORE".utf8) + [2] + check)
        let sealed = try AES.GCM.seal(Data(#"{"a":"x","b":"y"}"#.utf8), using: SymmetricKey(data: key), authenticating: header)
        try (header + (sealed.combined ?? Data())).write(to: URL(fileURLWithPath: path))
        let store = Self.store(path, key)
        #expect(try await store.read(key: "b")?.withRevealed { $0 } == "y")
        _ = try await store.write(puts: ["c": Secret("z")], removes: ["a"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes[8] == 3)
        let reopened = Self.store(path, key)
        #expect(try await reopened.keys() == ["b", "c"])
        #expect(try await reopened.segmentCount() == 1)
    }
}
