import Synchronization
import TokenctlModel
import TokenctlState

/// The state of a one-shot run that changes credentials, opened and locked, its content loading in the background.
///
/// ```swift
/// let (loaded, locked) = try await LockedState.open(directory: ".tokenctl", url: nil, holder: "alice", timeout: .init(seconds: 60),
///                                                    log: { print($0) }, loadManifests: { loader.load(paths: paths, now: now) })
/// defer { Task { await locked.lock.release() } }
/// let recorded = try await locked.recorded()
/// ```
package struct LockedState: Sendable {
    /// The state store.
    package let store: StateBackend.Store
    /// The lock, held (and renewed, on shared state) until released.
    package let lock: StateLockHolder
    private let loading: Task<Result<Handoff, StateError>, Never>

    /// The loaded state until a caller takes it: a task keeps its result for as long as it lives, and a copy kept there
    /// would double the memory of a run that changes every record.
    private final class Handoff: Sendable {
        private let state: Mutex<RecordedState?>

        init(_ state: consuming RecordedState) { self.state = Mutex(state) }

        func take() -> RecordedState? { state.withLock { $0.take() } }
    }

    /// Opens the state and takes its lock, and runs `loadManifests` where it costs least: while the state loads when
    /// state exists, else first, so that manifests with errors create nothing. The lock is released if anything after
    /// taking it fails.
    package static func open<Loaded>(directory: String, url: String?, holder: String, timeout: TokenDuration, log: (String) -> Void,
                                     loadManifests: () throws -> Loaded) async throws -> (Loaded, LockedState) {
        func lockedState() async throws(StateError) -> LockedState {
            let store = try StateBackend.open(directory: directory, url: url, mode: .readWrite)
            let lock = try await StateLockHolder.acquire(store, holder: holder, timeout: timeout, ttl: StateBackend.lockTTL(url: url), log: log)
            let loading = Task { () async -> Result<Handoff, StateError> in
                do throws(StateError) { return .success(Handoff(try await store.load())) } catch { return .failure(error) }
            }
            return LockedState(store: store, lock: lock, loading: loading)
        }
        guard StateBackend.exists(directory: directory, url: url) else {
            let loaded = try loadManifests()
            return (loaded, try await lockedState())
        }
        let locked = try await lockedState()
        do {
            return (try loadManifests(), locked)
        } catch {
            await locked.lock.release()
            throw error
        }
    }

    /// The recorded state, once loaded. The first call takes the copy loaded in the background, so that the caller holds
    /// the only one; a later call loads the state again. A failed background load throws its error on every call.
    package func recorded() async throws(StateError) -> RecordedState {
        if let loaded = try await loading.value.get().take() { return loaded }
        return try await store.load()
    }
}
