import ArgumentParser
import Foundation
import Logging
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
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

    func run() async throws {
        let now = ClockOption.now()
        let paths = manifestPaths
        let directory = stateDirectory
        let timeout = lockTimeout
        // Asking git for the manifests' commit runs two processes: do it while the manifests decode.
        let originLookup = Task { RequestOrigin.current(manifestPaths: paths) }
        let loaded: ManifestLoadResult
        let store: StateBackend.Store
        let lock: StateLockHolder
        let stateLoad: Task<Result<RecordedState, StateError>, Never>
                if StateBackend.exists(directory: directory, url: stateURL) {
            // Existing state: take the lock first, then load the state while the manifests decode.
            store = try openState(directory, mode: .readWrite, url: stateURL)
            lock = try await StateLockHolder.acquire(store, timeout: timeout, ttl: StateBackend.lockTTL(url: stateURL))
            stateLoad = Self.load(store)
            do {
                loaded = try loadManifestsOrExit(paths, now: now, holdingViolators: true)
            } catch {
                await lock.release()
                throw error
            }
        } else {
            // No state yet: check the manifests before creating anything.
            loaded = try loadManifestsOrExit(paths, now: now, holdingViolators: true)
            store = try openState(directory, mode: .readWrite, url: stateURL)
            lock = try await StateLockHolder.acquire(store, timeout: timeout, ttl: StateBackend.lockTTL(url: stateURL))
            stateLoad = Self.load(store)
        }
        let code: Int32
        do {
            let recorded = try await withState { () async throws(StateError) in try await stateLoad.value.get() }
            code = try await applyLocked(loaded: loaded, recorded: recorded, origin: await originLookup.value, store: store,
                                         directory: directory, now: now)
        } catch {
            await lock.release()
            throw error
        }
        await lock.release()
        // Exit with the manifests still alive: freeing every decoded token only to exit costs a noticeable share of a no-op apply.
        fflush(nil)
        withExtendedLifetime(loaded) { Foundation.exit(code) }
    }

    private static func load(_ store: StateBackend.Store) -> Task<Result<RecordedState, StateError>, Never> {
        Task { () async -> Result<RecordedState, StateError> in
            do throws(StateError) { return .success(try await store.load()) } catch { return .failure(error) }
        }
    }

    private func applyLocked(loaded: ManifestLoadResult, recorded loadedState: RecordedState, origin: RequestOrigin, store: StateBackend.Store,
                             directory: String, now: Timestamp) async throws -> Int32 {
        let auditKey = try await withState { () async throws(StateError) in
            try await AuditKey.forRun(store, stateDirectory: directory, manifests: loaded.manifests)
        }
        // Issuers and stores are opened only when needed: a no-op apply should cost no more than a plan.
        var opened: Engine?
        func engine() throws -> Engine {
            if let opened { return opened }
            let engine = Engine(drivers: try DriverFactory.makeOrExit(loaded.manifests, stateDirectory: directory, state: store),
                                logger: Logger(label: "tokenctl.apply"),
                                auditor: Auditing.auditor(store, key: auditKey, origin: origin, command: command,
                                                          desired: loaded.manifests, at: now),
                                checkpoint: FaultInjection.checkpoint)
            opened = engine
            return engine
        }
        var recorded = loadedState
        // Only a plan made from the manifests depends on which files were read; a saved plan was checked when made.
        let checksRoots: Bool = if case .manifests = source { true } else { false }
        func roots(record: Bool) async throws -> String? {
            guard checksRoots else { return nil }
            return try await withState { () async throws(StateError) in
                try await ManifestRoots.check(store, paths: manifestPaths, acceptNew: newManifestRoots, record: record)
            }
        }
        if let refusal = try await roots(record: false) {
            printError("tokenctl: error: \(refusal). Nothing was changed.")
            return 1
        }
        // A request that cannot be carried out is refused before anything is written, the audit log included.
        if case .requested(let request) = source {
            let problems = request.problems(desired: loaded.manifests, recorded: recorded)
            guard problems.isEmpty else {
                for problem in problems { printError("tokenctl: error: \(problem)") }
                printError("tokenctl: nothing was changed.")
                return 1
            }
        }
        // The request first; repairs and changes are then recorded each with the state write that makes them.
        try await withState { () async throws(StateError) in
            try await AuditLog(store: store, key: auditKey).append([
                origin.entry(command, at: now, reason: reason, detail: source.auditDetail + Self.allowances(loaded)),
            ])
        }
        var repairs: [RepairNote] = []
        if recorded.tokens.values.contains(where: { $0.versions.contains { $0.status == .pending } }) {
            let repairing = try engine()
            repairs = try await withState { () async throws(StateError) in try await repairing.repair(state: recorded, now: now) }
        }
        for line in Self.repairReport(repairs) { printError(line) }
        if !repairs.isEmpty { recorded = try await withState { () async throws(StateError) in try await store.load() } }
        let plan: Plan
        switch source {
        case .saved(let saved):
            let digest = try manifestsDigest(loaded.files)
            if let staleness = saved.staleness(currentSerial: recorded.serial, currentDigest: digest, now: now) {
                printError("tokenctl: error: \(saved.message(staleness))")
                return 1
            }
            // The plan is the contract: it must be exactly what the same state and manifests give for the moment it
            // was made for, so that an edited file cannot make apply do something planning never proposed.
            let observed = saved.plan.refreshed
                ? try await Inventory.observe(loaded.manifests, issuers: try engine().drivers.issuers, stores: try engine().drivers.stores)
                : nil
            var expected = Planner.plan(desired: loaded.manifests, recorded: recorded, observed: observed, now: saved.plan.createdAt,
                                        held: Dictionary(saved.plan.held.map { ($0.token, $0.violations) }, uniquingKeysWith: { $1 }))
            expected.manifestsDigest = digest
            if let mismatch = SavedPlanFile.mismatch(saved.plan, expected: expected) {
                printError("tokenctl: error: the saved plan does not match what tokenctl plans from the same state and manifests for "
                           + "the moment it was made for: \(mismatch)\(saved.plan.refreshed ? " (it was made with --refresh: the issuers or stores may have changed since)" : ""). "
                           + "The file was edited or made by another tokenctl version; nothing was changed. Make a new plan with tokenctl plan --out")
                return 1
            }
            // Policy is judged now: an exception that expired since the plan was saved holds its token.
            var current = saved.plan
            if !loaded.policyHolds.isEmpty { Planner.withhold(loaded.policyHolds, from: &current) }
            plan = current
        case .requested(let request):
            plan = request.plan(desired: loaded.manifests, recorded: recorded, now: now, held: loaded.policyHolds)
        case .manifests:
            let observed = refresh ? try await Inventory.observe(loaded.manifests, issuers: try engine().drivers.issuers,
                                                                   stores: try engine().drivers.stores) : nil
            plan = TerminalProgress.around("Planning") {
                Planner.plan(desired: loaded.manifests, recorded: recorded, observed: observed, now: now, held: loaded.policyHolds)
            }
        }
        if !startFromEmptyState, recorded.tokens.isEmpty, plan.changes.contains(where: { $0.action == .issue }),
           let signs = await StateRecovery.signsOfEarlierWork(desired: loaded.manifests, drivers: try engine().drivers, now: now) {
            printError("tokenctl: error: " + LostState.message(signs: signs, stateDescription: stateURL == nil ? "'\(directory)'" : "the shared state",
                                         paths: manifestPaths))
            return 1
        }
        print(PlanRenderer.human(plan, colors: useColors(fileDescriptor: 1)), terminator: "")
        // Held tokens do not stop the other changes; the run still ends with the policy's exit code.
        let heldCode: Int32 = plan.held.isEmpty ? 0 : 3
        guard plan.hasChanges else {
            _ = try await roots(record: true)
            return heldCode
        }
        if let tripped = retirementGuard?.check(plan, recorded: recorded) {
            printError("tokenctl: error: \(tripped.message). Nothing was changed.")
            return 1
        }
        if !source.isSaved && !autoApprove {
            guard isatty(0) == 1 else {
                printError("tokenctl: error: not applying without confirmation: stdin is not a terminal; pass --auto-approve, "
                           + "or save a plan with plan --out and apply that file")
                return 1
            }
            print("\nApply these changes? Only 'yes' is accepted: ", terminator: "")
            fflush(nil)
            guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
                print("Apply cancelled; nothing was changed.")
                return 1
            }
        }
        _ = try await roots(record: true)
        var applying = try engine()
        let progress = ApplyProgress(total: plan.changes.count)
        applying.onOutcomes = { progress.record($0) }
        print("")
        let report = try await withState { () async throws(StateError) in
            try await applying.apply(plan, desired: loaded.manifests, state: recorded, now: now)
        }
        if !progress.linePerChange {
            for outcome in report.outcomes {
                if let failure = outcome.failure { print(ApplyProgress.line(outcome, failure: failure)) }
            }
        }
        // The engine executes exactly the plan's changes, so these counts are the plan's.
        let failed = report.outcomes.filter { $0.failure != nil }.count
        print("Apply complete: \(counted(report.outcomes.count - failed, "change")) applied, \(failed) failed. State serial \(report.serial).")
        if !plan.held.isEmpty {
            printError("tokenctl: \(counted(plan.held.count, "token")) held by policy got no new credential; fix the violations above.")
        }
        return report.failures.isEmpty ? heldCode : 1
    }

    /// The secret-like values that manifests allow (`tokenctl.io/allow-secret-like`), for the request's audit entry.
    static func allowances(_ loaded: ManifestLoadResult) -> String {
        let allowed = loaded.diagnostics.filter { $0.code == SecretAllowance.code }.compactMap(\.location)
        guard !allowed.isEmpty else { return "" }
        return "; secret-like values allowed by \(SecretAllowance.annotation) at " + allowed.map(\.description).joined(separator: ", ")
    }

    /// The repairs of an interrupted run: each on its own line when few, else counts by outcome (the audit log keeps
    /// one entry per repair, `tokenctl audit` shows them).
    static func repairReport(_ notes: [RepairNote], detailLimit: Int = 5) -> [String] {
        guard notes.count > detailLimit else { return notes.map { "repaired: \($0)" } }
        func count(_ outcome: RepairNote.Outcome) -> Int { notes.filter { $0.outcome == outcome }.count }
        var parts = ["\(count(.completed)) completed and activated", "\(count(.rolledBack)) rolled back (issued again by this run)"]
        if count(.leftPending) > 0 {
            parts.append("\(count(.leftPending)) left pending (an issuer could not be asked or could not revoke; the next run tries again)")
        }
        return ["repaired \(counted(notes.count, "change")) an interrupted run left unfinished: " + parts.joined(separator: ", ")
                + "; tokenctl audit lists each"]
    }
}
