import Testing
import TestSupport
import TokenctlModel
import TokenctlReconciler
import TokenctlState

/// The locked state of a one-shot run hands its background load to one caller, so that the run holds the only copy.
@Suite struct LockedStateTests {
    static func token(_ name: String) -> RecordedToken {
        RecordedToken(id: TokenID(namespace: "apps", name: name), issuer: "local", owner: "team", lifespan: .never, rotationEvery: nil,
                      versions: [])
    }

    @Test func theFirstCallTakesTheBackgroundLoadAndALaterCallReadsTheStateAgain() async throws {
        let directory = Scratch.directory("locked-state")
        let store = try StateBackend.open(directory: directory, url: nil, mode: .readWrite)
        _ = try await store.write([.upsert(Self.token("web"))], expectedSerial: nil)
        let ((), locked) = try await LockedState.open(directory: directory, url: nil, holder: "test", timeout: TokenDuration(seconds: 5),
                                                      log: { _ in }, loadManifests: {})
        let first = try await locked.recorded()
        #expect(first.tokens.keys.map(\.name) == ["web"])

        // Written after the background load: only a fresh read sees it, so the second call cannot be answered from the first's copy.
        _ = try await locked.store.write([.upsert(Self.token("api"))], expectedSerial: first.serial)
        let second = try await locked.recorded()
        #expect(second.tokens.keys.map(\.name).sorted() == ["api", "web"])
        #expect(second.serial == first.serial + 1)
        await locked.lock.release()
    }
}
