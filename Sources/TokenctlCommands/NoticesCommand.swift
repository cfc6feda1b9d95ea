import ArgumentParser
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
        abstract: "Show the notices (expiry, failing change, ghost, unused token, policy violation) that are due.",
        discussion: "Notices go to the Notifiers declared in the manifests. Failing changes come from the controller's status file "
            + "(.tokenctl/controller.json); ghosts only with --refresh, which asks the issuers for their inventories."
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Show what is due without sending anything.")
    var dryRun = false

    @Option(help: "Judge as of this time (YYYY-MM-DD or RFC 3339), e.g. to see next week's expiry notices.")
    var at: String?

    @Flag(help: "Ask issuers for their inventories, so that ghost credentials are noticed too.")
    var refresh = false

    @Flag(help: "Print as JSON (format version 1).")
    var json = false

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH (the Notifiers are declared there).") }
        guard dryRun else {
            throw ValidationError("Sending notices is not built yet; run with --dry-run to see which are due.")
        }
    }

    func run() async throws {
        let now = try ClockOption.moment(at)
        // Policy violations are notices here, not a reason to stop.
        let desired = try loadManifestsOrExit(manifests.paths, now: now, quiet: true, holdingViolators: true).manifests
        var state = RecordedState()
        if StateBackend.exists(directory: manifests.stateDirectory, url: manifests.stateURL) {
            let store = try openState(manifests.stateDirectory, mode: .readOnly, url: manifests.stateURL)
            state = try await withState { () async throws(StateError) in try await store.load() }
        }
        var plan: Plan?
        if refresh {
            let observation = try await Inventory.observeOrExit(desired, stateDirectory: manifests.stateDirectory)
            plan = Planner.plan(desired: desired, recorded: state, observed: observation, now: now)
        }
        let facts = NoticeSurvey.facts(desired: desired, state: state,
                                       lastUsed: BuiltinAuthority.lastUsedTimes(state, directory: manifests.stateDirectory),
                                       failing: ControllerStatusFile.read(manifests.stateDirectory)?.needsAttention ?? [], plan: plan, now: now)
        let report = NoticeReport(generatedAt: now, dryRun: dryRun, notices: NoticePlanner.due(desired: desired, facts: facts, now: now))
        if json {
            print(try PlanJSON.encode(report))
        } else {
            if desired.notifiers.isEmpty { printError("note: the manifests declare no Notifier, so no notice is ever due") }
            print(report.text, terminator: "")
        }
    }
}
