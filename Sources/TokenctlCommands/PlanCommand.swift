import ArgumentParser
import Foundation
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlState
import TokenctlStores

/// `tokenctl plan`: what apply would do, each change with its reason.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what apply would do, each change with its reason.",
        discussion: """
            Reads the manifests and the recorded state (read-only) and prints the changes. Without --refresh no issuer is asked \
            anything. Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, 2 changes pending \
            (--detailed-exitcode), 3 policy violation (the plan lists the \
            tokens held, and plans every other change).
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(help: "Save the plan to FILE (with the state serial and a digest of the manifests) for a later apply.")
    var out: String?

    @Flag(help: "Print the plan as JSON (format version 1, see docs/json-output.md).")
    var json = false

    @Option(help: "Output format: human (default), json or markdown (for a pull-request comment).")
    var format: OutputFormat = .human

    @Flag(help: "Exit 2 when there are changes, 0 when there are none.")
    var detailedExitcode = false

    @Flag(help: "Ask every issuer for its inventory: find credentials missing at the issuer and ghosts.")
    var refresh = false

    @Option(help: "Plan as if it were this time (YYYY-MM-DD or RFC 3339): the basis of a forecast.")
    var at: String?

    @OptionGroup var retirement: RetirementOptions

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH (a file or a directory), e.g. -f Examples/quickstart.") }
    }

    func run() async throws {
        let now = try ClockOption.moment(at)
        let directory = manifests.stateDirectory
        let store = try openState(directory, mode: .readOnly, url: manifests.stateURL)
        // The state loads on another thread while the manifests decode: the two are independent.
        let stateLoad = Task { () async -> Result<RecordedState, StateError> in
            do throws(StateError) { return .success(try await store.load()) } catch { return .failure(error) }
        }
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: json || format != .human, holdingViolators: true)
        let recorded = try await withState { () async throws(StateError) in try await stateLoad.value.get() }
        if let refusal = try await withState({ () async throws(StateError) in
            try await ManifestRoots.check(store, paths: manifests.paths, acceptNew: retirement.newManifestRoots, record: false)
        }) {
            printError("tokenctl: error: \(refusal)")
            throw ExitCode(1)
        }
        if let lock = try await withState({ () async throws(StateError) in try await store.currentLock(now: now) }) {
            printError("note: the state is locked by \(lock.holder) on \(lock.host) (pid \(lock.processID)) since \(lock.acquiredAt); "
                       + "this plan only reads it, but an apply now would wait for that lock.")
        }
        var observed: Observation?
        if refresh {
            observed = try await Inventory.observeOrExit(loaded.manifests, stateDirectory: directory)
        }
        var plan = TerminalProgress.around("Planning") {
            Planner.plan(desired: loaded.manifests, recorded: recorded, observed: observed, now: now, held: loaded.policyHolds)
        }
        if let out {
            plan.manifestsDigest = try manifestsDigest(loaded.files)
            // Plan writes nothing to the state or its audit log (an apply running now must find both as it left them): the
            // saved plan is recorded when it is applied, with its digest.
            // Absolute paths: the plan applies from any directory, and reads exactly the files it was made from.
            let saved = SavedPlan(plan: plan, manifestPaths: manifests.paths.map(SavedPlanFile.absolute),
                                  stateDirectory: SavedPlanFile.absolute(directory))
            try orExit { () throws(SavedPlanFile.Failure) in try SavedPlanFile.write(saved, to: out) }
        }
        switch json ? .json : format {
        case .json:
            print(try PlanJSON.encode(plan))
        case .markdown:
            print(PlanRenderer.markdown(plan), terminator: "")
        case .human:
            print(PlanRenderer.human(plan, colors: useColors(fileDescriptor: 1)), terminator: "")
            if let out { print("Saved the plan to \(out); apply it with: tokenctl apply \(out)") }
        }
        if let tripped = retirement.retirementGuard?.check(plan, recorded: recorded) {
            printError("warning: apply would refuse this plan: \(tripped.message).")
        }
        let code: Int32 = !plan.held.isEmpty ? 3 : detailedExitcode && plan.hasDrift ? 2 : 0
        // Exit with everything still alive: freeing 100k tokens twice over only to exit is a noticeable share of a plan.
        fflush(nil)
        withExtendedLifetime((loaded, recorded, plan)) { Foundation.exit(code) }
    }
}

/// How plan prints.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case human, json, markdown
}
