import ArgumentParser
import Foundation
import Logging
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlSQLite
import TokenctlState
import Synchronization

/// `tokenctl apply`: carry the changes out.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Issue, deliver, rotate and retire tokens so that they match the manifests.",
        discussion: """
            From manifests (-f), apply plans, shows the plan and asks for confirmation on a terminal (--auto-approve \
            otherwise). From a saved plan (PLANFILE), it applies exactly that plan, and refuses it when the state or the \
            manifests changed since. Exit codes: 0 success, 1 error or a failed change, \
            3 policy violation (the tokens concerned get no new credential; every other change is applied).
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Argument(help: "A plan saved with plan --out.")
    var planFile: String?

    @Flag(help: "Apply without asking for confirmation.")
    var autoApprove = false

    @OptionGroup var locking: LockOptions

    @Option(help: "Why this apply is made; recorded in the audit log.")
    var reason: String?

    /// Refused: kept (hidden) only to explain why, since apply mints real credentials on the real clock.
    @Option(help: .hidden)
    var at: String?

    @Flag(help: "Ask issuers for their inventories first, as plan --refresh does: find ghosts and credentials missing at the issuer.")
    var refresh = false

    @OptionGroup var retirement: RetirementOptions

    @Flag(help: "Apply although the state is empty while issuers or stores show earlier work: every token is issued again, and what was issued before stays valid until revoked (plan --refresh shows it as ghosts).")
    var startFromEmptyState = false

    func validate() throws {
        if at != nil { throw ValidationError(ClockOption.refusedOnApply("apply")) }
        try checkReason(reason)
        if manifests.paths.isEmpty == (planFile == nil) {
            throw ValidationError("Pass either -f PATH (manifests) or a saved plan file, not both or neither.")
        }
    }

    func run() async throws {
        let saved = try planFile.map(SavedPlanFile.read)
        let workflow = ApplyWorkflow(
            command: "apply", manifestPaths: saved?.manifestPaths ?? manifests.paths,
            stateDirectory: saved?.stateDirectory ?? manifests.stateDirectory, stateURL: manifests.stateURL,
            source: saved.map { .saved($0) } ?? .manifests, autoApprove: autoApprove,
            lockTimeout: locking.lockTimeout, reason: reason, refresh: refresh,
            retirementGuard: retirement.retirementGuard, startFromEmptyState: startFromEmptyState,
            newManifestRoots: retirement.newManifestRoots)
        try await workflow.run()
    }
}

/// The refusal to treat lost state as a fresh start.
enum LostState {
    static func message(signs: String, stateDescription: String, paths: [String]) -> String {
        "the state in \(stateDescription) records no tokens, but earlier work is still there: \(signs). "
            + "The state was probably lost or emptied; applying now would issue every token again and leave the old credentials "
            + "valid. Nothing was changed. Rebuild the state from the issuers and stores with: tokenctl state rebuild "
            + paths.map { "-f \($0)" }.joined(separator: " ")
            + " (then plan as usual), or restore the state from a backup. For issuers that rebuild cannot read (postgres, exec), "
            + "apply --start-from-empty-state issues every token again; revoke the old credentials afterwards (plan --refresh lists them)."
    }
}

/// Holds the state lock: waits up to a timeout, then fails naming the holder. While held, it renews the lock every
/// third of its lifetime, so that a short lease (shared state) lasts as long as the holder runs, and no longer.
final class StateLockHolder: Sendable {
    let store: StateBackend.Store
    let request: LockRequest
    private let renewal: Task<Void, Never>

    private init(store: StateBackend.Store, request: LockRequest) {
        self.store = store
        self.request = request
        renewal = Task {
            let period = UInt64(max(1, request.ttl.seconds)) * 1_000_000_000 / 3
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: period)
                guard !Task.isCancelled else { return }
                let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
                // A failed renewal (lost lease) stops renewing; the next state write is then refused (fenced).
                do { _ = try await store.acquireLock(request, now: now) } catch { return }
            }
        }
    }

    static func acquire(_ store: StateBackend.Store, timeout: TokenDuration, ttl: TokenDuration = TokenDuration(seconds: 900)) async throws -> StateLockHolder {
        let deadline = Date().addingTimeInterval(TimeInterval(timeout.seconds))
        while true {
            switch await attempt(store, ttl: ttl) {
            case .success(let holder):
                return holder
            case .failure(let error):
                guard case .locked = error, Date() < deadline else {
                    printError("tokenctl: error: \(error)")
                    throw ExitCode(1)
                }
                try await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }

    /// One attempt to take the lock, breaking a lock left by a dead process of this host.
    static func attempt(_ store: StateBackend.Store, holder: String = RequestActor.name, ttl: TokenDuration = TokenDuration(seconds: 900),
                        log: (String) -> Void = { printError($0) }) async -> Result<StateLockHolder, StateError> {
        let request = LockRequest(holder: holder, host: ProcessInfo.processInfo.hostName, processID: getpid(), ttl: ttl)
        while true {
            let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
            do {
                _ = try await store.acquireLock(request, now: now)
                return .success(StateLockHolder(store: store, request: request))
            } catch {
                // A lock left by a process of this host that no longer runs (killed, crashed) is stale: break it.
                if case .locked(let held) = error, held.host == request.host, held.processID != request.processID,
                   kill(held.processID, 0) != 0, errno == ESRCH {
                    log("note: breaking the state lock left by \(held.holder) (pid \(held.processID), no longer running on this host)")
                    try? await store.releaseLock(holder: held.holder, processID: held.processID)
                    continue
                }
                return .failure(error)
            }
        }
    }

    /// Stops renewing without releasing (a newer holder object renews the same lease); waits for a renewal in flight.
    func stopRenewing() async {
        renewal.cancel()
        await renewal.value
    }

    func release() async {
        await stopRenewing()
        try? await store.releaseLock(holder: request.holder, processID: request.processID)
    }
}

/// Who is acting: TOKENCTL_ACTOR, the CI's actor, or the OS user.
enum RequestActor {
    static var name: String {
        let environment = ProcessInfo.processInfo.environment
        for variable in ["TOKENCTL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "USER", "LOGNAME"] {
            if let value = environment[variable], !value.isEmpty { return value }
        }
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }
}

/// The test-only fault-injection switch: `TOKENCTL_FAULT=POINT[:N]` kills the process (SIGKILL) the Nth
/// time (default 1st) an apply reaches checkpoint POINT. See `Engine.checkpoints` for the points.
enum FaultInjection {
    static let setting: (point: String, count: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["TOKENCTL_FAULT"], !value.isEmpty else { return nil }
        let parts = value.split(separator: ":")
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()

    static let hits = HitCounter()

    static let checkpoint: @Sendable (String) -> Void = { point in
        guard let setting, setting.point == point else { return }
        if hits.increment() >= setting.count { kill(getpid(), SIGKILL) }
    }
}

/// A thread-safe counter.
final class HitCounter: Sendable {
    private let count = Mutex(0)

    func increment() -> Int {
        count.withLock { count in
            count += 1
            return count
        }
    }
}
