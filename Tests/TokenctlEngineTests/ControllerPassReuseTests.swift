import Foundation
import Logging
import TestSupport
import Testing
import TokenctlController
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlStandardDrivers
import TokenctlState

/// A controller pass over manifest files and a state that did not change reuses the last pass instead of decoding and
/// planning again, and stops reusing it the moment anything it depends on moves: the files, the state, the clock.
@Suite struct ControllerPassReuseTests {
    static func manifests(_ names: [String]) -> String {
        ManifestText.header() + names.map { ManifestText.token($0, overlap: "1h") }.joined()
    }

    static func request(_ now: Timestamp) -> PassRequest { PassRequest(now: now, deferred: []) }

    @Test func reusesTheLastPassUntilTheFilesTheStateOrTheClockMove() async throws {
        let root = Scratch.directory("pass-reuse")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/tokens.yaml"
        try Self.manifests(["web"]).write(toFile: file, atomically: true, encoding: .utf8)
        let stateDirectory = root + "/.tokenctl"
        let pass = ControllerPass(paths: [root], directory: stateDirectory, stateURL: nil, registry: .standard, refresh: false,
                                  retirementGuard: nil, settle: 0, logger: Logger(label: "test"))
        let start = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let minute = TokenDuration(seconds: 60)

        let issued = await pass.run(Self.request(start))
        #expect(issued.changes.map(\.action) == [.issue] && !issued.reused)
        let settled = await pass.run(Self.request(start + minute))
        #expect(settled.changes.isEmpty && !settled.reused && settled.settledUntil != nil)
        let reused = await pass.run(Self.request(start + TokenDuration(seconds: 120)))
        #expect(reused.reused && reused.result == .success && reused.changes.isEmpty)
        #expect(reused.nextDueAt == settled.nextDueAt, "due times stay exact")
        let earliest = try #require(settled.fleet?.secondsUntilEarliestExpiry)
        #expect(reused.fleet?.secondsUntilEarliestExpiry == earliest - 60, "the expiry gauge moves with the clock")

        // The moment something falls due, the pass plans again and acts.
        let due = try #require(settled.nextDueAt)
        let rotated = await pass.run(Self.request(due))
        #expect(!rotated.reused && rotated.changes.map(\.action) == [.rotate])

        // After its own changes, a pass plans again once before it settles.
        #expect(await !pass.run(Self.request(due + minute)).reused)
        #expect(await pass.run(Self.request(due + minute + minute)).reused)

        // Another writer changed the state (its serial moved): plan again.
        let store = try SQLiteStateStore(directory: stateDirectory, mode: .readWrite)
        _ = try await store.write([], expectedSerial: nil)
        let afterWrite = await pass.run(Self.request(due + TokenDuration(seconds: 180)))
        #expect(!afterWrite.reused && afterWrite.changes.isEmpty)
        #expect(await pass.run(Self.request(due + TokenDuration(seconds: 240))).reused)

        // A master key rotation started (`tokenctl rekey` changes a setting, not the serial): plan again.
        try await store.setSetting(MasterKey.rotationSetting, to: "0123456789abcdef")
        #expect(await !pass.run(Self.request(due + TokenDuration(seconds: 250))).reused)
        try await store.setSetting(MasterKey.rotationSetting, to: "")
        #expect(await !pass.run(Self.request(due + TokenDuration(seconds: 260))).reused)
        #expect(await pass.run(Self.request(due + TokenDuration(seconds: 270))).reused)

        // A manifest edit is read and acted on at once.
        try Self.manifests(["web", "api"]).write(toFile: file, atomically: true, encoding: .utf8)
        let edited = await pass.run(Self.request(due + TokenDuration(seconds: 300)))
        #expect(!edited.reused && edited.changes.map(\.action) == [.issue])
    }
}
