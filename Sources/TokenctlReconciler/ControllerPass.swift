import Foundation
import Logging
import TokenctlController
import TokenctlDrivers
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlSQLite
import TokenctlState

/// What the manifest files look like on disk, without reading them: for each path, directory and file its identity,
/// size, and modification and status-change times.
package struct ManifestStamps: Equatable, Sendable {
    var stamps: [FileStamp]

    /// Stats `paths` and the manifest files under them.
    package init(_ paths: [String], loader: ManifestLoader) {
        stamps = (paths + loader.discover(paths: paths)).compactMap(FileStamp.init(path:))
    }

    /// When the files last changed: the newest modification time.
    package var lastChange: Double { stamps.map(\.modified).max() ?? 0 }
}

/// What a pass that found nothing to do leaves for the next one: while the manifest files and the state stay as they
/// were and nothing falls due, the next pass reuses it instead of decoding and planning again.
struct SettledPass {
    /// The manifest files the pass read.
    var stamps: ManifestStamps
    /// The state serial after the pass.
    var serial: Int64
    /// The master key rotation in progress then, "" for none (`tokenctl rekey` changes it without changing the serial).
    var keyRotation: String
    /// The pass's outcome.
    var outcome: PassOutcome
    /// Until when it holds.
    var until: Timestamp
}

/// One pass of the controller: read the manifests, take the state lock, repair, plan, apply what is not
/// backing off, record, release. Everything that goes wrong comes back in the outcome; nothing exits.
package actor ControllerPass {
    private let paths: [String]
    private let loader: ManifestLoader
    /// Fault injection (the crash tests kill the process at a named point).
    private let checkpoint: @Sendable (String) -> Void
    /// Last use of credentials as issuers recorded it outside the state, for the fleet snapshot.
    private let lastUsed: @Sendable (RecordedState) -> [String: Timestamp]
    private let directory: String
    private let stateURL: String?
    private let refresh: Bool
    private let retirementGuard: RetirementGuard?
    /// `--new-manifest-roots`: record the controller's `-f` paths as the roots the state is managed from.
    private let newManifestRoots: Bool
    /// How long the manifest files must have been left alone before a pass acts on them.
    private let settle: Double
    private let logger: Logger
    /// The last manifest set that validated: a broken edit leaves it in force.
    private var lastGood: ManifestLoadResult?
    /// Whether a state database was seen: after that, a missing one is an outage, not a fresh start.
    private var stateSeen: Bool
    /// The PostgreSQL store, kept open between passes.
    private var sharedStore: StateBackend.Store?
    /// On shared state, the lease this replica holds between passes: it leads while it holds it.
    private var leadership: StateLockHolder?
    /// Where the notice dispatcher learns the notifiers and whether this replica leads.
    private let board: NotifierBoard?
    /// The manifest files as they were when `lastGood` was read from them, with the errors they had.
    private var lastRead: (stamps: ManifestStamps, problems: Int)?
    /// The last pass that found nothing to do, for the next passes to reuse while nothing changes.
    private var settled: SettledPass?

    /// `retirementGuard` nil lets a pass retire any number of tokens (`--allow-mass-retirement`).
    package init(paths: [String], directory: String, stateURL: String?, registry: DriverRegistry, refresh: Bool,
                 retirementGuard: RetirementGuard?, newManifestRoots: Bool = false, settle: Double = 3, logger: Logger,
                 checkpoint: @escaping @Sendable (String) -> Void = { _ in },
                 lastUsed: @escaping @Sendable (RecordedState) -> [String: Timestamp] = { _ in [:] }, board: NotifierBoard? = nil) {
        self.loader = ManifestLoader(registry: registry)
        self.board = board
        self.checkpoint = checkpoint
        self.lastUsed = lastUsed
        self.settle = settle
        self.paths = paths
        self.directory = directory
        self.stateURL = stateURL
        self.refresh = refresh
        self.retirementGuard = retirementGuard
        self.newManifestRoots = newManifestRoots
        self.logger = logger
        stateSeen = stateURL == nil && FileManager.default.fileExists(atPath: Self.statePath(directory))
    }

    private static func statePath(_ directory: String) -> String {
        (directory as NSString).appendingPathComponent(SQLiteStateStore.fileName)
    }

    /// Gives up the lease on shutdown, so another replica takes over at once.
    package func resign() async {
        await leadership?.release()
        leadership = nil
    }

    package func run(_ request: PassRequest) async -> PassOutcome {
        let now = request.now
        let stampsBefore = ManifestStamps(paths, loader: loader)
        // Files unchanged since the set in force was read from them: decoding them again would find the same.
        if let lastRead, lastRead.stamps == stampsBefore, let previous = lastGood {
            var outcome = await runLocked(previous, stamps: stampsBefore, request: request)
            outcome.manifestsValid = lastRead.problems == 0
            outcome.manifestErrors = lastRead.problems
            postToBoard(outcome)
            return outcome
        }
        let changedBefore = stampsBefore.lastChange
        let loaded = loader.load(paths: paths, now: now)
        let stampsAfter = ManifestStamps(paths, loader: loader)
        let changedAfter = stampsAfter.lastChange
        var sinceChange = Date().timeIntervalSince1970 - max(changedBefore, changedAfter)
        // A modification time in the future (a skewed clock, `touch -d`) would keep the files unsettled for good.
        if sinceChange < -1 { sinceChange = settle }
        if settle > 0 && (changedBefore != changedAfter || sinceChange < settle) {
            // Being written (an editor, a git checkout, a half-copied file): act on nothing read now. The last set that
            // validated and settled stays in force, and the pass runs again once the files have been left alone.
            let retryAt = now + TokenDuration(seconds: Int64(max(1, (settle - max(0, sinceChange)).rounded(.up))))
            logger.notice("manifests changed moments ago; waiting for them to settle", metadata: ["settle": "\(settle)s"])
            guard let previous = lastGood else {
                return PassOutcome(result: .failed, stateReachable: true,
                                   error: "the manifests changed \(Int(max(0, sinceChange)))s ago; waiting until they have been unchanged "
                                       + "for \(Int(settle))s before acting on them", nextDueAt: retryAt)
            }
            var outcome = await runLocked(previous, stamps: nil, request: request)
            outcome.nextDueAt = min(outcome.nextDueAt ?? retryAt, retryAt)
            postToBoard(outcome)
            return outcome
        }
        // Errors make a set unusable; policy violations only hold their tokens, judged again at every pass (below).
        let problems = loaded.diagnostics.filter { $0.severity == .error }
        // Read while unchanged and settled: until the files change, the next passes need not read them again.
        lastRead = stampsBefore == stampsAfter ? (stampsAfter, problems.count) : nil
        if problems.isEmpty {
            lastGood = loaded
        } else {
            for diagnostic in problems.prefix(20) {
                logger.error("manifest problem", metadata: [
                    "location": "\(diagnostic.location.map { "\($0)" } ?? "-")", "diagnostic": "\(diagnostic.message)",
                    "severity": "\(diagnostic.severity.rawValue)",
                ])
            }
        }
        let valid = problems.isEmpty
        guard let desired = lastGood else {
            return PassOutcome(result: .failed, stateReachable: false,
                               error: "the manifests have \(problems.count) error(s) and no earlier valid set is known; fix them (tokenctl validate)",
                               manifestsValid: false, manifestErrors: problems.count)
        }
        var outcome = await runLocked(desired, stamps: stampsBefore == stampsAfter ? stampsAfter : nil, request: request)
        outcome.manifestsValid = valid
        outcome.manifestErrors = problems.count
        postToBoard(outcome)
        return outcome
    }

    /// Only a replica whose pass reached the state and did not stand by delivers notices (also while its passes are held).
    private func postToBoard(_ outcome: PassOutcome) {
        board?.post(notifiers: lastGood?.manifests.notifiers ?? [], leading: outcome.stateReachable && outcome.standbyFor == nil)
    }

    /// `stamps` are the manifest files `loaded` was read from, when they did not change while being read.
    private func runLocked(_ loaded: ManifestLoadResult, stamps: ManifestStamps?, request: PassRequest) async -> PassOutcome {
        let path = Self.statePath(directory)
        if stateURL == nil && stateSeen && !FileManager.default.fileExists(atPath: path) {
            return .unreachable("the state database '\(path)' has disappeared; restore it. The controller does not start over "
                                + "from empty state, which would issue every token again")
        }
        let store: StateBackend.Store
        if let cached = sharedStore {
            store = cached
        } else {
            do {
                store = try StateBackend.open(directory: directory, url: stateURL, mode: .readWrite)
            } catch {
                return .unreachable("\(error)")
            }
            // A shared store keeps its connection (and its lease's fencing epoch) from pass to pass.
            if stateURL != nil { sharedStore = store }
        }
        stateSeen = true
        let ttl = StateBackend.lockTTL(url: stateURL)
        let lock: StateLockHolder
        // Taking the lock again renews it when this replica holds it (same holder and pid, same fencing epoch).
        switch await StateLockHolder.attempt(store, holder: "\(RequestActor.name) (reconcile --watch)", ttl: ttl,
                                             log: { [logger] in logger.notice("\($0)") }) {
        case .success(let holder):
            lock = holder
        case .failure(let error):
            await leadership?.release()
            leadership = nil
            // On shared state another replica holding the lease is normal: stand by and try again soon.
            if stateURL != nil, case .locked(let held) = error {
                return .standby(leader: "\(held.holder) on \(held.host) (pid \(held.processID))",
                                retryAt: request.now + TokenDuration(seconds: max(1, ttl.seconds / 3)))
            }
            return .unreachable("\(error)")
        }
        let outcome: PassOutcome
        if let reused = await reuseSettled(stamps: stamps, store: store, request: request) {
            outcome = reused
        } else {
            outcome = await runPass(loaded, store: store, request: request)
            settled = nil
            if let stamps, let until = outcome.settledUntil, let serial = try? await store.serial(),
               let keyRotation = await Self.keyRotation(store) {
                settled = SettledPass(stamps: stamps, serial: serial, keyRotation: keyRotation, outcome: outcome, until: until)
            }
        }
        if stateURL != nil && outcome.result != .failed {
            // Lead: keep the lease (renewed in the background) until shutdown or until another replica takes it.
            let previous = leadership
            leadership = lock
            if previous !== lock { await previous?.stopRenewing() }
        } else {
            // Not leading after a failed pass: stop the previous holder's renewal too, so that no orphaned task
            // keeps taking the lease, and let a healthy replica try.
            if let previous = leadership, previous !== lock { await previous.stopRenewing() }
            leadership = nil
            await lock.release()
        }
        return outcome
    }

    /// The last settled pass's outcome moved to this pass's moment, when nothing it found can have changed: the same
    /// manifest files, the same state serial, nothing due yet, no failing change waiting for a retry, no inventories to read.
    private func reuseSettled(stamps: ManifestStamps?, store: StateBackend.Store, request: PassRequest) async -> PassOutcome? {
        guard let settled, let stamps, settled.stamps == stamps, request.now < settled.until, request.failing.isEmpty,
              request.deferred.isEmpty, !refresh, let serial = try? await store.serial(), serial == settled.serial,
              let keyRotation = await Self.keyRotation(store), keyRotation == settled.keyRotation else { return nil }
        var outcome = settled.outcome
        outcome.fleet = outcome.fleet?.advanced(to: request.now)
        outcome.noticesQueued = 0
        outcome.reused = true
        return outcome
    }

    /// The master key rotation the state records ("" for none), or nil when it cannot be read.
    private static func keyRotation(_ store: StateBackend.Store) async -> String? {
        do {
            return try await store.setting(MasterKey.rotationSetting) ?? ""
        } catch {
            return nil
        }
    }

    private func runPass(_ loaded: ManifestLoadResult, store: StateBackend.Store, request: PassRequest) async -> PassOutcome {
        let now = request.now
        let desired = loaded.manifests
        let (paths, directory, logger) = (self.paths, self.directory, self.logger)
        let environment = Reconciler.Environment.composed(store: store, manifests: desired, paths: paths, command: "reconcile --watch",
                                                           directory: directory, stateURL: stateURL, registry: loader.registry,
                                                           origin: { RequestOrigin.current(manifestPaths: paths) }, logger: logger,
                                                           checkpoint: checkpoint, warn: { logger.warning("\($0)") })
        var options = Reconciler.Options()
        options.refresh = refresh
        options.auditDetail = "controller pass" + Reconciler.secretAllowances(loaded)
        options.retirementGuard = retirementGuard
        options.onGuard = .hold
        options.newManifestRoots = newManifestRoots
        options.recordRootsAtStart = true
        // A pass that neither repairs nor changes anything leaves no trace in the audit log.
        options.auditEveryRun = false
        let deferredKeys = request.deferred
        options.deferred = { deferredKeys.contains(RetryBook.key(of: $0)) }
        var hooks = Reconciler.Hooks()
        hooks.repaired = { notes in for note in notes { logger.notice("repaired", metadata: ["detail": "\(note)"]) } }
        // Policy is judged at this pass's moment, not when the files were read: an exception that expired since holds
        // its token now, without a restart or a change to the files.
        let violations = PolicyChecker.check(desired, now: now).filter { $0.severity == .policy }
        let holds = PolicyChecker.holds(violations)
        for violation in violations.prefix(20) {
            logger.error("policy violation: token held", metadata: ["token": "\(violation.token.map { "\($0)" } ?? "-")",
                                                                    "diagnostic": "\(violation.message)"])
        }
        let result: Reconciler.Result
        do {
            result = try await Reconciler(environment: environment, options: options, hooks: hooks)
                .run(loaded.manifests, recorded: try await store.load(), holds: holds, now: now)
        } catch let error as StateError {
            // The state was reached, but this process's master key cannot be used with it (out of date, mid-rotation).
            if case .masterKey = error { return PassOutcome(result: .failed, stateReachable: true, error: "\(error)") }
            return .unreachable("\(error)")
        } catch {
            // Issuers or stores that cannot be opened: the state was reached, the pass could not act.
            return PassOutcome(result: .failed, stateReachable: true, error: "\(error)")
        }
        switch result.status {
        case .cancelled, .done:
            break
        default:
            // A pass that cannot act (held by the guard, refused, roots that differ) may wait days for an operator: the
            // notices due meanwhile still go out, judged on the state as it is.
            if let state = result.state {
                _ = await queueNotices(desired, rows: TokenStatus.rows(state, lastUsed: lastUsed(state), now: now), holds: holds,
                                       plan: nil, rateLimited: [], request: request, store: store, environment: environment)
            }
        }
        switch result.status {
        case .rootsDiffer(let refusal):
            logger.error("manifest roots differ from the state's", metadata: ["detail": "\(refusal)"])
            return PassOutcome(result: .failed, stateReachable: true, error: refusal + "; the controller waits for an operator")
        case .invalidRequest(let problems):
            return PassOutcome(result: .failed, stateReachable: true, error: problems.joined(separator: "; "))
        case .refused(let why):
            // Lost state above all: empty state beside live credentials is not a fresh start, so wait for an operator.
            return PassOutcome(result: .failed, stateReachable: true, error: why)
        case .held(let tripped):
            // Held, not applied in part: the rest of such a plan is as suspect as its retirements.
            logger.error("plan held by the retirement guard", metadata: ["detail": "\(tripped.message)"])
            var held = PassOutcome(result: .failed, stateReachable: true,
                                   error: "held by the retirement guard: \(tripped.message); the controller waits for an operator "
                                   + "(tokenctl apply -f … --allow-mass-retirement) or for the manifests to change",
                                   nextDueAt: result.plan?.nextDueAt)
            held.heldRetirements = tripped.retiring
            return held
        case .cancelled, .done:
            break
        }
        let tokens = TokensByID(desired.tokens)
        let changes = (result.report?.outcomes ?? []).map {
            PassOutcome.Change(key: RetryBook.key(of: $0.change), action: $0.change.action, failure: $0.failure?.description,
                               issuer: $0.change.issuer, owner: $0.change.token.flatMap { tokens[$0]?.owner })
        }
        let after: RecordedState
        if let state = result.state {
            after = state
        } else {
            // Loaded once the run's copies of the state are gone (see `Reconciler.Result.state`).
            do {
                after = try await store.load()
            } catch {
                return .unreachable("\(error)")
            }
        }
        let nextDue = result.report == nil ? result.plan?.nextDueAt : Planner.plan(desired: desired, recorded: after, observed: nil, now: now).nextDueAt
        let rows = TokenStatus.rows(after, lastUsed: lastUsed(after), now: now)
        let rateLimited = (result.plan?.held ?? []).filter { $0.rateLimit != nil }
        let (noticesQueued, nextNotice, noticesFailed) = await queueNotices(desired, rows: rows, holds: holds, plan: refresh ? result.plan : nil,
                                                             rateLimited: rateLimited, request: request, store: store, environment: environment)
        var heldParts: [String] = []
        if !holds.isEmpty {
            heldParts.append("\(counted(holds.count, "token")) held by policy (no new credential until they comply): "
                             + holds.keys.sorted().prefix(5).map(\.description).joined(separator: ", "))
        }
        if !rateLimited.isEmpty {
            heldParts.append("\(counted(rateLimited.count, "new token")) held by a creation-rate limit: "
                             + rateLimited.prefix(5).map(\.token.description).joined(separator: ", "))
        }
        let held = heldParts.isEmpty ? nil : heldParts.joined(separator: "; ")
        var outcome = PassOutcome(result: changes.contains { $0.failure != nil } || held != nil ? .partial : .success, stateReachable: true,
                                  error: held, changes: changes, plannedKeys: Set((result.plan?.changes ?? []).map(RetryBook.key(of:))),
                                  deferredCount: result.deferred.count, nextDueAt: [nextDue, nextNotice].compactMap { $0 }.min(),
                                  fleet: FleetSnapshot(rows: rows, now: now, desired: desired, held: Set(holds.keys)),
                                  ghosts: refresh ? Self.ghosts(in: result.plan, issuers: desired.issuers.keys) : nil)
        outcome.noticesQueued = noticesQueued
        // Settled only when the next pass would find the same: nothing left for it to retry (notices it could not queue,
        // an issue repair could not settle).
        if changes.isEmpty && result.deferred.isEmpty && !noticesFailed
            && !after.tokens.values.contains(where: { $0.versions.contains { $0.status == .pending } }) {
            outcome.settledUntil = Self.settledUntil(rows: rows, desired: desired, nextDue: outcome.nextDueAt, now: now)
        }
        return outcome
    }

    /// The first moment after `now` at which a pass over the same manifests and state could find something different:
    /// something falls due, a token's health or unused status changes, a policy exception ends. At most an hour away,
    /// so that last-use times recorded outside the state (by `serve`) reach the metrics within the hour.
    static func settledUntil(rows: [TokenStatus.Row], desired: ManifestSet, nextDue: Timestamp?, now: Timestamp) -> Timestamp {
        var until = now + TokenDuration(seconds: 3_600)
        func consider(_ moment: Timestamp?) {
            if let moment, moment > now, moment < until { until = moment }
        }
        consider(nextDue)
        consider(PolicyChecker.nextChange(desired, after: now))
        let unusedAfter = FleetSnapshot.defaultUnusedAfter
        for row in rows {
            consider(row.expiresAt)
            consider(row.nextRotationAt)
            consider(UnusedTokens.unusedSince(row).map { $0 + unusedAfter })
        }
        return until
    }

    /// Queues the notices due now in the state's outbox (under this pass's lock, with their audit entries); the
    /// dispatcher delivers them apart from the passes. A failure here is logged and never stops the pass.
    private func queueNotices(_ desired: ManifestSet, rows: [TokenStatus.Row], holds: [TokenID: [String]], plan: Plan?, rateLimited: [HeldToken],
                              request: PassRequest, store: StateBackend.Store,
                              environment: Reconciler.Environment) async -> (queued: Int, nextDue: Timestamp?, failed: Bool) {
        guard !desired.notifiers.isEmpty else { return (0, nil, false) }
        let facts = NoticeSurvey.facts(rows: rows, held: holds, failing: request.failing, plan: plan, rateLimited: rateLimited)
        let (due, nextDue) = NoticePlanner.evaluate(desired: desired, facts: facts, now: request.now)
        guard !due.isEmpty else { return (0, nextDue, false) }
        do {
            let queued = try await NoticeSurvey.queue(due, store: store, auditKey: try await environment.auditKey(), origin: environment.origin(),
                                                      command: "reconcile --watch", now: request.now)
            if !queued.isEmpty { logger.info("notices queued", metadata: ["count": "\(queued.count)"]) }
            return (queued.count, nextDue, false)
        } catch {
            logger.warning("cannot queue notices; the next pass tries again", metadata: ["error": "\(error)"])
            return (0, nextDue, true)
        }
    }

    /// Ghosts the plan reports, by issuer; every inventoried issuer is present, with zero when it has none.
    private static func ghosts(in plan: Plan?, issuers: Dictionary<String, Issuer>.Keys) -> [String: Int] {
        var counts = Dictionary(uniqueKeysWithValues: issuers.map { ($0, 0) })
        for change in plan?.changes ?? [] where change.action == .ghost { counts[change.issuer, default: 0] += 1 }
        return counts
    }
}
