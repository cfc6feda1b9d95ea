import Foundation
import TestSupport
import Testing
import TokenctlModel
import TokenctlSQLite
import TokenctlState
import GRDB

func temporaryStateDirectory() -> String {
    Scratch.path("tokenctl-state") + "/.tokenctl"
}

@Suite struct SQLiteStateStoreTests {
    let conformance = StateStoreConformance { try SQLiteStateStore(directory: temporaryStateDirectory(), mode: .readWrite) }

    @Test(arguments: StateStoreConformance.Check.allCases)
    func conformsToTheStateStoreContract(_ check: StateStoreConformance.Check) async throws { try await conformance.run(check) }

    @Test func createsAGitignoreAndPrivateFiles() throws {
        let directory = temporaryStateDirectory()
        _ = try SQLiteStateStore(directory: directory, mode: .readWrite)
        let ignore = try String(contentsOfFile: directory + "/.gitignore", encoding: .utf8)
        #expect(ignore.contains("*"))
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/state.db")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func readOnlyOfAMissingStateIsEmptyAndCreatesNothing() async throws {
        let directory = temporaryStateDirectory()
        let store = try SQLiteStateStore(directory: directory, mode: .readOnly)
        #expect(try await store.load().tokens.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func corruptStateIsAClearError() throws {
        let directory = temporaryStateDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: directory + "/state.db"))
        for mode in [SQLiteStateStore.Mode.readOnly, .readWrite] {
            #expect {
                _ = try SQLiteStateStore(directory: directory, mode: mode)
            } throws: { error in
                guard case .corrupt(let path, _) = error as? StateError else { return false }
                return path.hasSuffix("state.db") && "\(error)".contains("restore it from a backup")
            }
        }
        // Nothing was overwritten.
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/state.db")) == Data(repeating: 0x42, count: 4096))
    }

    @Test func stateFromANewerTokenctlIsRefused() async throws {
        let directory = temporaryStateDirectory()
        let store = try SQLiteStateStore(directory: directory, mode: .readWrite)
        _ = try await store.write([.upsert(StateStoreConformance.token("a"))], expectedSerial: 0)
        // Simulate a newer tokenctl: a migration this build does not know.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO grdb_migrations VALUES ('v9-future')\"); c.commit()",
                            directory + "/state.db"]
        try sqlite.run()
        sqlite.waitUntilExit()
        #expect(sqlite.terminationStatus == 0)
        #expect(throws: StateError.newerVersion(path: directory + "/state.db", unknownMigrations: ["v9-future"])) {
            _ = try SQLiteStateStore(directory: directory, mode: .readOnly)
        }
    }

    @Test func stateDirectoryDefaultsBesideTheManifests() throws {
        let base = Scratch.path("tokenctl-loc")
        try FileManager.default.createDirectory(atPath: base + "/manifests", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/manifests/a.yaml", contents: Data())
        #expect(StateLocation.directory(explicit: nil, manifestPaths: [base + "/manifests"]) == base + "/manifests/.tokenctl")
        #expect(StateLocation.directory(explicit: nil, manifestPaths: [base + "/manifests/a.yaml"]) == base + "/manifests/.tokenctl")
        #expect(StateLocation.directory(explicit: "/x/state", manifestPaths: [base]) == "/x/state")
    }
}

/// Values this version cannot read are refused with the state named, never guessed at.
@Suite struct SQLiteStateValueTests {
    static func stateWithOneToken() async throws -> (directory: String, store: SQLiteStateStore) {
        let directory = temporaryStateDirectory()
        let store = try SQLiteStateStore(directory: directory, mode: .readWrite)
        let version = CredentialVersion(version: 1, credentialID: "c1", fingerprint: "f1", scopes: ["read"], issuedAt: Timestamp(secondsSinceEpoch: 1),
                                        expiresAt: nil, status: .active)
        _ = try await store.write([.upsert(RecordedToken(id: TokenID(namespace: "apps", name: "web"), issuer: "local", owner: "team",
                                                         lifespan: .never, rotationEvery: nil, versions: [version]))], expectedSerial: 0)
        return (directory, store)
    }

    @Test(arguments: [
        ("UPDATE credential SET status = 'archived'", "unknown status 'archived'"),
        ("UPDATE token SET lifespan = 'forever-ish'", "unreadable lifespan"),
        ("UPDATE token SET overlap = 'soon'", "unreadable overlap"),
    ])
    func anUnreadableValueIsAnError(sql: String, expected: String) async throws {
        let (directory, _) = try await Self.stateWithOneToken()
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let queue = try DatabaseQueue(path: directory + "/state.db")
        try await queue.write { db in try db.execute(sql: sql) }
        try queue.close()
        let store = try SQLiteStateStore(directory: directory, mode: .readOnly)
        await #expect {
            _ = try await store.load()
        } throws: { error in
            guard case .corrupt(_, let detail) = error as? StateError else { return false }
            return detail.contains(expected) && detail.contains("apps/web")
        }
    }

    /// Versions share one array per repeated scope list when read, but only for the same bytes: two spellings of the same
    /// text that Unicode calls equivalent are each read back as written.
    @Test func scopeListsAreReadBackAsWrittenWhenShared() async throws {
        let directory = temporaryStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let store = try SQLiteStateStore(directory: directory, mode: .readWrite)
        let spellings = [["caf\u{E9}:read"], ["cafe\u{301}:read"], ["caf\u{E9}:read"], ["cafe\u{301}:read"]]
        let versions = spellings.enumerated().map { offset, scopes in
            CredentialVersion(version: offset + 1, credentialID: "c\(offset)", fingerprint: "f\(offset)", scopes: scopes,
                              issuedAt: Timestamp(secondsSinceEpoch: 1), expiresAt: nil, status: .revoked)
        }
        _ = try await store.write([.upsert(RecordedToken(id: TokenID(namespace: "apps", name: "web"), issuer: "local", owner: "team",
                                                         lifespan: .never, rotationEvery: nil, versions: versions))], expectedSerial: 0)
        let read = try #require(try await store.load().tokens[TokenID(namespace: "apps", name: "web")])
        #expect(read.versions.map { $0.scopes.map { Array($0.utf8) } } == spellings.map { $0.map { Array($0.utf8) } })
    }
}
