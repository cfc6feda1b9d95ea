import Foundation
import Testing
import TokenctlModel
import TokenctlSQLite
import TokenctlState

func temporaryStateDirectory() -> String {
    NSTemporaryDirectory() + "tokenctl-state-" + UUID().uuidString + "/.tokenctl"
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
        let base = NSTemporaryDirectory() + "tokenctl-loc-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: base + "/manifests", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/manifests/a.yaml", contents: Data())
        #expect(StateLocation.directory(explicit: nil, manifestPaths: [base + "/manifests"]) == base + "/manifests/.tokenctl")
        #expect(StateLocation.directory(explicit: nil, manifestPaths: [base + "/manifests/a.yaml"]) == base + "/manifests/.tokenctl")
        #expect(StateLocation.directory(explicit: "/x/state", manifestPaths: [base]) == "/x/state")
    }
}
