import Foundation
import Logging
import Synchronization
import Testing
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlState

/// How often a reconciler opened the drivers.
final class DriverCount: Sendable {
    let count = Mutex(0)
}

/// The workflow every run goes through, in process: in-memory drivers, real SQLite state, the clock passed in.
@Suite struct ReconcilerTests {
    static let day: Int64 = 86_400

    /// A reconciler over `world`, with what it was asked recorded.
    static func reconciler(_ world: World, options: Reconciler.Options = Reconciler.Options(), hooks: Reconciler.Hooks = Reconciler.Hooks(),
                           drivers opened: DriverCount? = nil) -> Reconciler {
        let (issuer, a, b, state) = (world.issuer, world.a, world.b, world.state)
        let environment = Reconciler.Environment(
            store: state, manifestPaths: ["manifests"], command: "test", stateDescription: "the test state",
            origin: { RequestOrigin(requestID: "r1", actor: "tester", host: "here") },
            auditKey: { Data(repeating: 7, count: 32) },
            openDrivers: {
                opened?.count.withLock { $0 += 1 }
                return Drivers(issuers: ["mem": issuer], stores: ["a": a, "b": b], state: state)
            },
            observe: { _, drivers in
                var inventories: [String: [ObservedCredential]] = [:]
                for (name, issuer) in drivers.issuers { inventories[name] = try await issuer.list() }
                return Observation(inventories: inventories)
            },
            logger: Logger(label: "test"))
        return Reconciler(environment: environment, options: options, hooks: hooks)
    }

    static func run(_ reconciler: Reconciler, _ world: World, _ tokens: [Token], at seconds: Int64,
                    holds: [TokenID: [String]] = [:]) async throws -> Reconciler.Result {
        try await reconciler.run(World.manifests(tokens), recorded: try await world.state.load(), holds: holds, now: .at(seconds))
    }

    @Test func aRunThatChangesNothingOpensNoDriverAndTheControllerLeavesNoAuditEntry() async throws {
        let world = try World()
        let web = World.token("web")
        let first = try await Self.run(Self.reconciler(world), world, [web], at: 0)
        #expect(first.report?.outcomes.count == 1)
        let entries = try await world.state.auditRecords().count

        let opened = DriverCount()
        var quiet = Reconciler.Options()
        quiet.auditEveryRun = false
        let idle = try await Self.run(Self.reconciler(world, options: quiet, drivers: opened), world, [web], at: 60)
        guard case .done = idle.status else { Issue.record("expected done, got \(String(describing: idle.status))"); return }
        #expect(idle.report == nil && idle.plan?.hasChanges == false)
        #expect(opened.count.withLock { $0 } == 0, "no issuer or store is opened when nothing is due")
        #expect(try await world.state.auditRecords().count == entries, "an idle controller pass writes nothing")

        _ = try await Self.run(Self.reconciler(world), world, [web], at: 120)
        #expect(try await world.state.auditRecords().count == entries + 1, "a one-shot apply records its request even with no changes")
    }

    @Test func theGuardRefusesOrHoldsAndNothingIsRevoked() async throws {
        let world = try World()
        let tokens = (0..<4).map { World.token("t\($0)") }
        _ = try await Self.run(Self.reconciler(world), world, tokens, at: 0)
        var options = Reconciler.Options()
        options.retirementGuard = RetirementGuard(limitPercent: 10)
        let refused = try await Self.run(Self.reconciler(world, options: options), world, [tokens[0]], at: 60)
        guard case .refused(let why) = refused.status else { Issue.record("expected a refusal, got \(String(describing: refused.status))"); return }
        #expect(why.hasSuffix("Nothing was changed."))
        options.onGuard = .hold
        let held = try await Self.run(Self.reconciler(world, options: options), world, [tokens[0]], at: 60)
        guard case .held(let tripped) = held.status else { Issue.record("expected the plan held, got \(String(describing: held.status))"); return }
        #expect(tripped.retiring == 3)
        #expect(world.issuer.valid.count == 4, "nothing was revoked")
    }

    @Test func deferredChangesAreLeftOutAndReported() async throws {
        let world = try World()
        let web = World.token("web"), api = World.token("api")
        var options = Reconciler.Options()
        options.deferred = { $0.token?.name == "api" }
        let result = try await Self.run(Self.reconciler(world, options: options), world, [web, api], at: 0)
        #expect(result.plan?.changes.count == 2, "the plan as made")
        #expect(result.deferred.map { $0.token?.name } == ["api"])
        #expect(result.report?.outcomes.map { $0.change.token?.name } == ["web"])
        #expect(try await world.versions("api").isEmpty)
    }

    @Test func aDeclinedConfirmationChangesNothing() async throws {
        let world = try World()
        var hooks = Reconciler.Hooks()
        let asked = Mutex<[Int]>([])
        hooks.confirm = { plan in
            asked.withLock { $0.append(plan.changes.count) }
            return false
        }
        let result = try await Self.run(Self.reconciler(world, hooks: hooks), world, [World.token("web")], at: 0)
        guard case .cancelled = result.status else { Issue.record("expected cancelled, got \(String(describing: result.status))"); return }
        #expect(asked.withLock { $0 } == [1])
        #expect(world.issuer.valid.isEmpty && world.a.keys.isEmpty)
        #expect(try await world.state.load().tokens.isEmpty)
    }

    @Test func anEmptyStateBesideLiveCredentialsIsLostStateNotAFreshStart() async throws {
        let world = try World()
        _ = try await Self.run(Self.reconciler(world), world, [World.token("web")], at: 0)
        let other = try World()
        // The same issuer and stores, but a new, empty state: what they hold is the work of a lost state.
        let lost = World(issuer: world.issuer, a: world.a, b: world.b, state: other.state)
        let result = try await Self.run(Self.reconciler(lost), lost, [World.token("web")], at: 60)
        guard case .refused(let why) = result.status else { Issue.record("expected a refusal, got \(String(describing: result.status))"); return }
        #expect(why.contains("the state in the test state records no tokens, but earlier work is still there"))
        #expect(world.issuer.valid.count == 1, "nothing issued again")

        var options = Reconciler.Options()
        options.startFromEmptyState = true
        let forced = try await Self.run(Self.reconciler(lost, options: options), lost, [World.token("web")], at: 120)
        #expect(forced.report?.failures.isEmpty == true)
        #expect(world.issuer.valid.count == 2)
    }

    @Test func aSavedPlanIsExecutedOnlyWhenPlanningAgreesWithIt() async throws {
        let world = try World()
        let web = World.token("web")
        _ = try await Self.run(Self.reconciler(world), world, [web], at: 0)
        let recorded = try await world.state.load()
        var plan = Planner.plan(desired: World.manifests([web]), recorded: recorded, observed: nil, now: .at(31 * Self.day))
        plan.manifestsDigest = "sha256:test"
        var edited = plan
        edited.changes[0].action = .retire

        var options = Reconciler.Options()
        options.source = .saved(SavedPlan(plan: edited, manifestPaths: ["/m"], stateDirectory: "/s"), currentDigest: "sha256:test", holdsWhenMade: [:])
        let refused = try await Self.run(Self.reconciler(world, options: options), world, [web], at: 31 * Self.day)
        guard case .refused(let why) = refused.status else { Issue.record("expected a refusal, got \(String(describing: refused.status))"); return }
        #expect(why.contains("it lists 'retire apps/web v1' where planning gives 'rotate apps/web v1'"))
        #expect(world.issuer.valid.count == 1)

        // A token the file claims policy held (to keep it from rotating) is judged from the manifests instead.
        var held = plan
        held.changes = []
        held.held = [HeldToken(token: TokenID(namespace: "apps", name: "web"), violations: ["invented"], withheld: [.rotate])]
        options.source = .saved(SavedPlan(plan: held, manifestPaths: ["/m"], stateDirectory: "/s"), currentDigest: "sha256:test", holdsWhenMade: [:])
        let invented = try await Self.run(Self.reconciler(world, options: options), world, [web], at: 31 * Self.day)
        guard case .refused = invented.status else { Issue.record("expected a refusal, got \(String(describing: invented.status))"); return }

        options.source = .saved(SavedPlan(plan: plan, manifestPaths: ["/m"], stateDirectory: "/s"), currentDigest: "sha256:test", holdsWhenMade: [:])
        let applied = try await Self.run(Self.reconciler(world, options: options), world, [web], at: 31 * Self.day)
        #expect(applied.report?.outcomes.map { $0.change } == plan.changes)
        #expect(applied.report?.failures.isEmpty == true)
    }
}
