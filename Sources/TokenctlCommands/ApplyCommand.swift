import ArgumentParser
import Foundation
import Logging
import Synchronization
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlState

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

    @Flag(help: "Issue every new token this run although a policy's creation-rate limit (maxIssued) would hold some; needs --reason, recorded in the audit log.")
    var liftRateLimits = false

    func validate() throws {
        if at != nil { throw ValidationError(ClockOption.refusedOnApply("apply")) }
        try checkReason(reason)
        if liftRateLimits && (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--lift-rate-limits needs --reason: say why this run may issue past the creation-rate limit.")
        }
        if liftRateLimits && planFile != nil {
            throw ValidationError("--lift-rate-limits applies to a run from manifests; a saved plan applies exactly what it shows.")
        }
        if manifests.paths.isEmpty == (planFile == nil) {
            throw ValidationError("Pass either -f PATH (manifests) or a saved plan file, not both or neither.")
        }
    }

    func run() async throws {
        let saved = try planFile.map { path in try orExit { () throws(SavedPlanFile.Failure) in try SavedPlanFile.read(path) } }
        let workflow = ApplyWorkflow(
            command: "apply", manifestPaths: saved?.manifestPaths ?? manifests.paths,
            stateDirectory: saved?.stateDirectory ?? manifests.stateDirectory, stateURL: manifests.stateURL,
            source: saved.map { .saved($0) } ?? .manifests, autoApprove: autoApprove,
            lockTimeout: locking.lockTimeout, reason: reason, refresh: refresh,
            retirementGuard: retirement.retirementGuard, startFromEmptyState: startFromEmptyState,
            newManifestRoots: retirement.newManifestRoots, liftRateLimits: liftRateLimits)
        try await workflow.run()
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
