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

/// The apply workflow shared by `apply` and `rotate`: lock, audit the request, repair, plan, confirm, execute.
struct ApplyWorkflow {
    /// Where the plan comes from.
    enum Source {
        /// Planned from the manifests.
        case manifests
        /// Exactly a plan saved with `plan --out`.
        case saved(SavedPlan)
        /// Rotations an operator asked for (`tokenctl rotate`).
        case requested(RequestedRotation)

        var isSaved: Bool { if case .saved = self { true } else { false } }

        var auditDetail: String {
            switch self {
            case .manifests: "from manifests"
            case .saved: "from a saved plan"
            case .requested(let request): request.auditDetail
            }
        }
    }

    /// The command named in the audit log.
    var command: String
    var manifestPaths: [String]
    var stateDirectory: String
    var stateURL: String?
    var source: Source
    var autoApprove: Bool
    var lockTimeout: TokenDuration
    var reason: String?
    var refresh: Bool
    var retirementGuard: RetirementGuard?
    var startFromEmptyState: Bool
    /// `--new-manifest-roots`: record this run's `-f` paths as the roots the state is managed from.
    var newManifestRoots = false
    /// `--lift-rate-limits`: no creation-rate limit holds tokens back in this run (audited with the reason).
    var liftRateLimits = false

    func run() async throws {
        let now = ClockOption.now()
        let paths = manifestPaths
        let directory = stateDirectory
        // Asking git for the manifests' commit runs two processes: do it while the manifests decode.
        let originLookup = Task { RequestOrigin.current(manifestPaths: paths) }
        let (loaded, locked) = try await withStateErrors {
            try await LockedState.open(directory: directory, url: stateURL, holder: RequestActor.name, timeout: lockTimeout,
                                       log: { printError($0) }, loadManifests: { try loadManifestsOrExit(paths, now: now, holdingViolators: true) })
        }
        let code: Int32
        do {
            let recorded = try await withState { () async throws(StateError) in try await locked.recorded() }
            code = try await applyLocked(loaded: loaded, recorded: consume recorded, origin: await originLookup.value, store: locked.store,
                                         directory: directory, now: now)
        } catch {
            await locked.lock.release()
            throw error
        }
        await locked.lock.release()
        // Exit with the manifests still alive: freeing every decoded token only to exit costs a noticeable share of a no-op apply.
        fflush(nil)
        withExtendedLifetime(loaded) { Foundation.exit(code) }
    }

    private func applyLocked(loaded: ManifestLoadResult, recorded: consuming RecordedState, origin: RequestOrigin, store: StateBackend.Store,
                             directory: String, now: Timestamp) async throws -> Int32 {
        let manifests = loaded.manifests
        let environment = Reconciler.Environment.composed(store: store, manifests: manifests, paths: manifestPaths, command: command,
                                                           directory: directory, stateURL: stateURL, registry: .standard, origin: { origin },
                                                           logger: Logger(label: "tokenctl.apply"), checkpoint: FaultInjection.checkpoint,
                                                           warn: { printError("warning: " + $0) })
        var options = Reconciler.Options()
        options.source = switch source {
        case .manifests: .manifests
        case .saved(let saved):
            .saved(saved, currentDigest: try manifestsDigest(loaded.files),
                   holdsWhenMade: PolicyChecker.holds(PolicyChecker.check(manifests, now: saved.plan.createdAt).filter { $0.severity == .policy }))
        case .requested(let request): .requested(request)
        }
        options.refresh = refresh
        options.reason = reason
        options.auditDetail = source.auditDetail + Reconciler.secretAllowances(loaded)
            + (liftRateLimits ? "; creation-rate limits lifted for this run" : "")
        options.liftRateLimits = liftRateLimits
        options.retirementGuard = retirementGuard
        options.newManifestRoots = newManifestRoots
        options.startFromEmptyState = startFromEmptyState
        var hooks = Reconciler.Hooks()
        hooks.repaired = { for line in RepairNote.report($0) { printError(line) } }
        hooks.planning = { plan in TerminalProgress.around("Planning") { plan() } }
        hooks.planned = { print(PlanRenderer.human($0, colors: useColors(fileDescriptor: 1)), terminator: "") }
        hooks.confirm = { [autoApprove] _ in autoApprove || Self.confirmOnTerminal() }
        let progress = Mutex<ApplyProgress?>(nil)
        hooks.executing = { plan in
            progress.withLock { $0 = ApplyProgress(total: plan.changes.count) }
            print("")
        }
        hooks.outcomes = { outcomes in progress.withLock { $0?.record(outcomes) } }
        let result: Reconciler.Result
        do {
            result = try await Reconciler(environment: environment, options: options, hooks: hooks)
                .run(loaded.manifests, recorded: consume recorded, holds: loaded.policyHolds, now: now)
        } catch {
            printError("tokenctl: error: \(error)")
            return 1
        }
        if let errors = result.status.stopErrors {
            for error in errors { printError("tokenctl: error: \(error)") }
            return 1
        }
        // Held tokens do not stop the other changes; the run still ends with the policy's exit code.
        let heldCode: Int32 = (result.plan?.held.isEmpty ?? true) ? 0 : 3
        guard let report = result.report, let plan = result.plan else { return heldCode }
        if !(progress.withLock { $0?.linePerChange } ?? false) {
            for outcome in report.outcomes {
                if let failure = outcome.failure { print(ApplyProgress.line(outcome, failure: failure)) }
            }
        }
        // The engine executes exactly the plan's changes, so these counts are the plan's.
        let failed = report.outcomes.filter { $0.failure != nil }.count
        print("Apply complete: \(counted(report.outcomes.count - failed, "change")) applied, \(failed) failed. State serial \(report.serial).")
        if !plan.held.isEmpty {
            let limited = plan.held.filter { $0.rateLimit != nil }.count
            if limited < plan.held.count {
                printError("tokenctl: \(counted(plan.held.count - limited, "token")) held by policy got no new credential; fix the violations above.")
            }
            if limited > 0 {
                printError("tokenctl: \(counted(limited, "new token")) held by a creation-rate limit; they are issued once the window "
                           + "allows, or now with --lift-rate-limits --reason TEXT.")
            }
        }
        return report.failures.isEmpty ? heldCode : 1
    }

    /// Asks on the terminal; refuses without one (a pipeline must say --auto-approve or apply a saved plan).
    private static func confirmOnTerminal() -> Bool {
        guard isatty(0) == 1 else {
            printError("tokenctl: error: not applying without confirmation: stdin is not a terminal; pass --auto-approve, "
                       + "or save a plan with plan --out and apply that file")
            return false
        }
        print("\nApply these changes? Only 'yes' is accepted: ", terminator: "")
        fflush(nil)
        guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
            print("Apply cancelled; nothing was changed.")
            return false
        }
        return true
    }
}
