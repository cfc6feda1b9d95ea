import ArgumentParser
import Logging
import TokenctlBuiltinIssuer
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlStandardDrivers
import TokenctlState

/// `tokenctl notices --dry-run`: the notices the Notifiers in the manifests would be sent now, or at `--at`.
struct NoticesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notices",
        abstract: "Send the notices (expiry, failing change, ghost, unused token, policy violation) that are due, or show them.",
        discussion: "Notices go to the Notifiers declared in the manifests, each once per event (and lead time): what was sent is "
            + "recorded with the state. Without --dry-run, due notices are queued (and audited) under the state lock, then every "
            + "pending notice gets one delivery attempt; what fails is retried by the next run or the controller, which sends "
            + "them on its own. Failing changes come from the controller's status file (.tokenctl/controller.json); ghosts only "
            + "with --refresh, which asks the issuers for their inventories."
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Show what is due without sending anything.")
    var dryRun = false

    @Option(help: "With --dry-run: judge as of this time (YYYY-MM-DD or RFC 3339), e.g. to see next week's expiry notices.")
    var at: String?

    @Flag(help: "Ask issuers for their inventories, so that ghost credentials are noticed too.")
    var refresh = false

    @Flag(help: "Print as JSON (format version 1).")
    var json = false

    @OptionGroup var locking: LockOptions

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH (the Notifiers are declared there).") }
        if at != nil && !dryRun { throw ValidationError("--at needs --dry-run: notices are only ever sent at the real time.") }
    }

    func run() async throws {
        guard dryRun else { return try await send() }
        let now = try ClockOption.moment(at)
        // Policy violations are notices here, not a reason to stop.
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true, holdingViolators: true)
        let desired = loaded.manifests
        var state = RecordedState()
        if StateBackend.exists(directory: manifests.stateDirectory, url: manifests.stateURL) {
            let store = try openState(manifests.stateDirectory, mode: .readOnly, url: manifests.stateURL)
            state = try await withState { () async throws(StateError) in try await store.load() }
        }
        let facts = try await facts(desired, state: state, held: loaded.policyHolds, now: now)
        let report = NoticeReport(generatedAt: now, dryRun: true, notices: NoticePlanner.due(desired: desired, facts: facts, now: now))
        if json {
            print(try PlanJSON.encode(report))
        } else {
            if desired.notifiers.isEmpty { printError("note: the manifests declare no Notifier, so no notice is ever due") }
            print(report.text, terminator: "")
        }
    }

    private func send() async throws {
        let now = ClockOption.now()
        let paths = manifests.paths
        try requireState(manifests, holding: "there is no outbox to send notices from (tokenctl apply creates it)")
        let originLookup = Task { RequestOrigin.current(manifestPaths: paths) }
        let (loaded, locked) = try await withStateErrors {
            try await LockedState.open(directory: manifests.stateDirectory, url: manifests.stateURL, holder: RequestActor.name,
                                       timeout: locking.lockTimeout, log: { printError($0) },
                                       loadManifests: { try loadManifestsOrExit(paths, now: now, quiet: true, holdingViolators: true) })
        }
        let outcome: NoticeRun.Outcome
        do {
            let state = try await withState { () async throws(StateError) in try await locked.recorded() }
            let facts = try await facts(loaded.manifests, state: state, held: loaded.policyHolds, now: now)
            outcome = try await withStateErrors {
                try await NoticeRun.send(locked: locked, desired: loaded.manifests, facts: facts, directory: manifests.stateDirectory,
                                         origin: await originLookup.value, now: now, clock: { ClockOption.now() },
                                         logger: Logger(label: "tokenctl.notices"))
            }
        } catch {
            await locked.lock.release()
            throw error
        }
        let report = NoticeReport(generatedAt: now, dryRun: false, notices: outcome.queued)
        if json {
            print(try PlanJSON.encode(report))
        } else {
            print(report.text, terminator: "")
            print("Delivered \(counted(outcome.round.sent, "notice")); \(outcome.round.failed) failed and stay queued for the next attempt.")
        }
        if outcome.round.failed > 0 { throw ExitCode(1) }
    }

    /// The facts notices are judged on: the state, last use, the controller's failing changes and, with --refresh, ghosts.
    private func facts(_ desired: ManifestSet, state: RecordedState, held: [TokenID: [String]], now: Timestamp) async throws -> NoticeFacts {
        var plan: Plan?
        if refresh {
            let observation = try await Inventory.observeOrExit(desired, stateDirectory: manifests.stateDirectory)
            plan = Planner.plan(desired: desired, recorded: state, observed: observation, now: now)
        }
        return NoticeSurvey.facts(desired: desired, state: state, held: held,
                                  lastUsed: BuiltinAuthority.lastUsedTimes(state, directory: manifests.stateDirectory),
                                  failing: ControllerStatusFile.read(manifests.stateDirectory)?.needsAttention ?? [], plan: plan, now: now)
    }
}
