import Foundation
import Logging
import Synchronization
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// The one workflow of every run that changes credentials (`apply`, `rotate`, one-shot `reconcile`, each controller
/// pass), under the state lock its caller holds: check the manifest roots, audit the request, repair what an
/// interrupted run left, plan (from the manifests, a saved plan or an operator's request), refuse lost state, apply the
/// deletion guard, confirm, execute exactly the plan, and report. Everything outside (drivers, the audit key and
/// origin, the clock, inventories, checkpoints) is injected; callers render the result.
///
/// ```swift
/// let reconciler = Reconciler(environment: environment, options: Reconciler.Options())
/// let result = try await reconciler.run(loaded.manifests, recorded: try await store.load(), holds: loaded.policyHolds, now: now)
/// if case .refused(let why) = result.status { print(why) }
/// ```
package struct Reconciler: Sendable {
    /// Where the plan comes from.
    package enum Source: Sendable {
        /// Planned from the manifests.
        case manifests
        /// Exactly a plan saved with `plan --out`, with the digest of the manifests read now and the tokens policy held at
        /// the moment the plan was made for (judged again from the manifests, not taken from the file).
        case saved(SavedPlan, currentDigest: String, holdsWhenMade: [TokenID: [String]])
        /// Rotations an operator asked for (`tokenctl rotate`).
        case requested(RequestedRotation)

        var isSaved: Bool { if case .saved = self { true } else { false } }
    }

    /// What tripping the retirement guard does.
    package enum GuardAction: Sendable {
        /// Nothing is changed and the run ends (apply: an operator is there to decide).
        case refuse
        /// The whole plan is held, and the run reports it (the controller: it waits for an operator).
        case hold
    }

    /// What the run needs from outside it.
    package struct Environment: Sendable {
        /// The state, whose lock the caller holds.
        package var store: any StateStore & AuditLogStore
        /// The `-f` paths, for the manifest roots and messages.
        package var manifestPaths: [String]
        /// The command named in the audit log.
        package var command: String
        /// How the state is named in messages (`'.tokenctl'`, `the shared state`).
        package var stateDescription: String
        /// Who asks: called at most once, when the run first writes to the audit log (it may run git).
        package var origin: @Sendable () -> RequestOrigin
        /// The key that authenticates the audit log (may create the generated master key).
        package var auditKey: @Sendable () async throws -> Data?
        /// Opens the issuers and stores the manifests name; called at most once, only when needed.
        package var openDrivers: @Sendable () throws -> Drivers
        /// Asks the issuers and stores what they hold (`--refresh`).
        package var observe: @Sendable (ManifestSet, Drivers) async throws -> Observation
        /// Called at the engine's named points (fault injection in tests).
        package var checkpoint: @Sendable (String) async -> Void
        /// Where the engine logs.
        package var logger: Logger

        /// Creates an environment.
        package init(store: any StateStore & AuditLogStore, manifestPaths: [String], command: String, stateDescription: String,
                    origin: @escaping @Sendable () -> RequestOrigin, auditKey: @escaping @Sendable () async throws -> Data?,
                    openDrivers: @escaping @Sendable () throws -> Drivers,
                    observe: @escaping @Sendable (ManifestSet, Drivers) async throws -> Observation,
                    checkpoint: @escaping @Sendable (String) async -> Void = { _ in }, logger: Logger) {
            self.store = store
            self.manifestPaths = manifestPaths
            self.command = command
            self.stateDescription = stateDescription
            self.origin = origin
            self.auditKey = auditKey
            self.openDrivers = openDrivers
            self.observe = observe
            self.checkpoint = checkpoint
            self.logger = logger
        }
    }

    /// How the run behaves.
    package struct Options: Sendable {
        /// Where the plan comes from.
        package var source: Source = .manifests
        /// Ask the issuers and stores first (`--refresh`).
        package var refresh = false
        /// `--reason`, recorded with the request.
        package var reason: String?
        /// The detail of the request's audit entry (where the plan comes from, the allowed secret-like values).
        package var auditDetail = ""
        /// The deletion guard; nil when lifted.
        package var retirementGuard: RetirementGuard?
        /// What tripping the guard does.
        package var onGuard: GuardAction = .refuse
        /// Record the `-f` paths as the roots the state is managed from (`--new-manifest-roots`).
        package var newManifestRoots = false
        /// Record the roots as soon as they are checked (the controller: a pass the guard holds still records them),
        /// rather than only once changes are confirmed (apply: a cancelled run records nothing).
        package var recordRootsAtStart = false
        /// Apply on an empty state although issuers or stores show earlier work.
        package var startFromEmptyState = false
        /// `--lift-rate-limits`: plan without the policies' creation-rate limits, for this run only.
        package var liftRateLimits = false
        /// Write the request entry even when nothing changes (one-shot commands); the controller writes one only for
        /// passes that repair or change something.
        package var auditEveryRun = true
        /// Changes to leave out of this run (the controller's backoff).
        package var deferred: @Sendable (PlannedChange) -> Bool = { _ in false }

        /// Creates options.
        package init() {}
    }

    /// What the caller is told while the run works.
    package struct Hooks: Sendable {
        /// The repairs of an interrupted run, once done.
        package var repaired: @Sendable ([RepairNote]) -> Void = { _ in }
        /// Wraps planning from the manifests (a progress line).
        package var planning: @Sendable (@Sendable () -> Plan) -> Plan = { $0() }
        /// The plan, before the guard and confirmation.
        package var planned: @Sendable (Plan) -> Void = { _ in }
        /// Asked before changes are made (not for a saved plan, whose file is the approval).
        package var confirm: @Sendable (Plan) async -> Bool = { _ in true }
        /// The plan about to be executed (deferred changes left out), once confirmed.
        package var executing: @Sendable (Plan) -> Void = { _ in }
        /// The outcomes of each step of the execution as it completes.
        package var outcomes: @Sendable ([ChangeOutcome]) -> Void = { _ in }

        /// Creates hooks that say nothing and confirm everything.
        package init() {}
    }

    /// How a run ended.
    package struct Result: Sendable {
        /// How it ended.
        package enum Status: Sendable {
            /// Refused before any change (repairs aside), with a sentence saying why and what to do.
            case refused(String)
            /// The `-f` roots differ from those the state is managed from (the sentence says how); nothing was changed.
            case rootsDiffer(String)
            /// An operator's request names tokens that cannot be rotated, each with a sentence; nothing was written.
            case invalidRequest([String])
            /// The retirement guard tripped and the whole plan is held (`GuardAction.hold`).
            case held(RetirementGuard.Tripped)
            /// The confirmation was declined.
            case cancelled
            /// Done: `report` is nil when there was nothing to change.
            case done

            /// The errors to print when the run stopped before changing anything (none for a held plan or a declined
            /// confirmation, which say so as they happen); nil when it went ahead.
            package var stopErrors: [String]? {
                switch self {
                case .rootsDiffer(let refusal): ["\(refusal). Nothing was changed."]
                case .invalidRequest(let problems): problems + ["nothing was changed."]
                case .refused(let why): [why]
                case .held, .cancelled: []
                case .done: nil
                }
            }
        }

        /// How it ended.
        package var status: Status
        /// The plan, as made (deferred changes included); nil when the run ended before planning.
        package var plan: Plan?
        /// The repairs done first.
        package var repairs: [RepairNote] = []
        /// What the execution did; nil when nothing was executed.
        package var report: ApplyReport?
        /// The changes left out for this run (`Options.deferred`).
        package var deferred: [PlannedChange] = []
        /// The state as the run last read it; nil when an execution changed it (load it again to see the changes). Not
        /// reloaded here: a caller that needs the state after a mass rotation loads it once the run's copies are gone,
        /// rather than while they are still held (two copies of 100,000 records were most of such a run's peak memory).
        package var state: RecordedState?
    }

    /// What the run needs from outside it.
    package let environment: Environment
    /// How it behaves.
    package let options: Options
    /// What the caller is told.
    package let hooks: Hooks

    /// Creates a reconciler.
    package init(environment: Environment, options: Options, hooks: Hooks = Hooks()) {
        self.environment = environment
        self.options = options
        self.hooks = hooks
    }

    /// Runs the workflow once, at `now`, over the desired manifests and the state as loaded under the lock. `holds` are
    /// the tokens policy holds at `now`. Pass the state with `consume` when nothing else keeps it: the engine then changes
    /// the only copy, instead of holding the old and the new record of every changed token at once.
    package func run(_ desired: ManifestSet, recorded loadedState: consuming RecordedState, holds: [TokenID: [String]],
                    now: Timestamp) async throws -> Result {
        let session = Session(environment: environment, options: options, desired: desired, now: now)
        let store = environment.store
        var recorded = consume loadedState
        func refused(_ why: String, plan: Plan? = nil) -> Result { Result(status: .refused(why), plan: plan, state: recorded) }

        // A plan from the manifests depends on which files were read; a saved plan was checked when it was made.
        let checksRoots = if case .manifests = options.source { true } else { false }
        if checksRoots, let refusal = try await ManifestRoots.check(store, paths: environment.manifestPaths, acceptNew: options.newManifestRoots,
                                                                      record: options.recordRootsAtStart) {
            return Result(status: .rootsDiffer(refusal), state: recorded)
        }
        if case .requested(let request) = options.source {
            let problems = request.problems(desired: desired, recorded: recorded)
            if !problems.isEmpty { return Result(status: .invalidRequest(problems), state: recorded) }
        }
        if options.auditEveryRun { try await session.auditRequest() }

        var repairs: [RepairNote] = []
        if recorded.tokens.values.contains(where: { $0.versions.contains { $0.status == .pending } }) {
            try await session.auditRequest()
            repairs = try await session.engine().repair(state: recorded, now: now)
            recorded = try await store.load()
        }
        hooks.repaired(repairs)

        let plan: Plan
        switch options.source {
        case .saved(let saved, let digest, let holdsWhenMade):
            if let staleness = saved.staleness(currentSerial: recorded.serial, currentDigest: digest, now: now) {
                return refused(saved.message(staleness))
            }
            // The plan is the contract: exactly what the same state and manifests give for the moment it was made
            // for, so that an edited file cannot make apply do what planning never proposed.
            let observed = saved.plan.refreshed ? try await environment.observe(desired, try session.drivers()) : nil
            var expected = Planner.plan(desired: desired, recorded: recorded, observed: observed, now: saved.plan.createdAt,
                                        held: holdsWhenMade)
            expected.manifestsDigest = digest
            if let mismatch = SavedPlan.mismatch(saved.plan, expected: expected) {
                return refused("the saved plan does not match what tokenctl plans from the same state and manifests for the moment it "
                               + "was made for: \(mismatch)"
                               + (saved.plan.refreshed ? " (it was made with --refresh: the issuers or stores may have changed since)" : "")
                               + ". The file was edited or made by another tokenctl version; nothing was changed. Make a new plan "
                               + "with tokenctl plan --out")
            }
            // Policy is judged now: an exception that expired since the plan was saved holds its token.
            var current = saved.plan
            if !holds.isEmpty { Planner.withhold(holds, from: &current) }
            plan = current
        case .requested(let request):
            plan = request.plan(desired: desired, recorded: recorded, now: now, held: holds)
        case .manifests:
            let observed = options.refresh ? try await environment.observe(desired, try session.drivers()) : nil
            let state = recorded
            let enforce = !options.liftRateLimits
            plan = hooks.planning { Planner.plan(desired: desired, recorded: state, observed: observed, now: now, held: holds, enforceRateLimits: enforce) }
        }
        if !options.startFromEmptyState, recorded.tokens.isEmpty, plan.changes.contains(where: { $0.action == .issue }),
           let signs = await StateRecovery.signsOfEarlierWork(desired: desired, drivers: try session.drivers(), now: now) {
            return refused(LostState.message(signs: signs, stateDescription: environment.stateDescription, paths: environment.manifestPaths),
                           plan: plan)
        }
        hooks.planned(plan)
        guard plan.hasChanges else {
            if checksRoots { _ = try await recordRoots() }
            return Result(status: .done, plan: plan, repairs: repairs, state: recorded)
        }
        if let tripped = options.retirementGuard?.check(plan, recorded: recorded) {
            switch options.onGuard {
            case .refuse: return refused(tripped.message + ". Nothing was changed.", plan: plan)
            case .hold: return Result(status: .held(tripped), plan: plan, repairs: repairs, state: recorded)
            }
        }
        // Copied only when something is left out: a copy of every change of a mass rotation is tens of megabytes.
        let deferred = plan.changes.filter(options.deferred)
        var executable = plan
        if !deferred.isEmpty { executable.changes.removeAll(where: options.deferred) }
        guard executable.hasChanges else {
            return Result(status: .done, plan: plan, repairs: repairs, deferred: deferred, state: recorded)
        }
        if !options.source.isSaved, !(await hooks.confirm(plan)) {
            return Result(status: .cancelled, plan: plan, repairs: repairs, state: recorded)
        }
        if checksRoots { _ = try await recordRoots() }
        try await session.auditRequest()
        hooks.executing(executable)
        var engine = try session.engine()
        engine.onOutcomes = hooks.outcomes
        // Handed over, not shared: `refused` above captures `recorded`, so it cannot be consumed directly.
        var executed = RecordedState()
        swap(&executed, &recorded)
        let report = try await engine.apply(executable, desired: session.desiredTokens, state: consume executed, now: now)
        return Result(status: .done, plan: plan, repairs: repairs, report: report, deferred: deferred, state: nil)
    }

    private func recordRoots() async throws(StateError) -> String? {
        try await ManifestRoots.check(environment.store, paths: environment.manifestPaths, acceptNew: options.newManifestRoots, record: true)
    }
}

/// What one run opens at most once: the request's audit entry and key, the drivers, and the audited engine.
private final class Session: Sendable {
    let environment: Reconciler.Environment
    let options: Reconciler.Options
    let desired: ManifestSet
    let now: Timestamp
    private struct Opened {
        var origin: RequestOrigin?
        var auditKey: Data??
        var drivers: Drivers?
        var desiredTokens: TokensByID?
    }
    private let opened = Mutex(Opened())

    init(environment: Reconciler.Environment, options: Reconciler.Options, desired: ManifestSet, now: Timestamp) {
        self.environment = environment
        self.options = options
        self.desired = desired
        self.now = now
    }

    var origin: RequestOrigin {
        opened.withLock { opened in
            if let origin = opened.origin { return origin }
            let origin = environment.origin()
            opened.origin = origin
            return origin
        }
    }

    /// Writes the request's entry, once, before any repair or change is recorded.
    func auditRequest() async throws {
        guard opened.withLock({ $0.auditKey }) == nil else { return }
        let key = try await environment.auditKey()
        try await AuditLog(store: environment.store, key: key).append([
            origin.entry(environment.command, at: now, reason: options.reason, detail: options.auditDetail),
        ])
        opened.withLock { $0.auditKey = .some(key) }
    }

    func drivers() throws -> Drivers {
        if let drivers = opened.withLock({ $0.drivers }) { return drivers }
        let drivers = try environment.openDrivers()
        opened.withLock { $0.drivers = drivers }
        return drivers
    }

    /// The desired tokens by id, indexed once for the engine and its auditor.
    var desiredTokens: TokensByID {
        opened.withLock { opened in
            if let tokens = opened.desiredTokens { return tokens }
            let tokens = TokensByID(desired.tokens)
            opened.desiredTokens = tokens
            return tokens
        }
    }

    /// The engine, recording each change and repair in the audit log with the request's origin.
    func engine() throws -> Engine {
        let key = opened.withLock { $0.auditKey } ?? nil
        return Engine(drivers: try drivers(), logger: environment.logger,
                      auditor: Auditing.auditor(environment.store, key: key, origin: origin, command: environment.command,
                                                desired: desiredTokens, at: now),
                      checkpoint: environment.checkpoint)
    }
}
