import Testing
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner

/// The engine executes exactly the plan it is given, with failures as typed values, and never records as done a
/// change that did not happen: in process, with in-memory drivers, real SQLite state and a clock passed in.
@Suite struct EngineContractTests {
    static let day: Int64 = 86_400

    @Test func everyActionOfAPlanIsCarriedOutAndNothingElse() async throws {
        let world = try World()
        let web = World.token("web"), api = World.token("api")
        let (issued, first) = try await world.reconcile([web, api], at: 0)
        #expect(issued.changes.map(\.action) == [.issue, .issue])
        #expect(first.outcomes.count == 2 && first.failures.isEmpty)
        #expect(world.a.keys == ["apps/web", "apps/api"] && world.b.keys == ["apps/web", "apps/api"])

        // At day 31 both are due for rotation; a plan that lists only web's rotation rotates only web.
        let now = Timestamp.at(31 * Self.day)
        let due = Planner.plan(desired: World.manifests([web, api]), recorded: try await world.state.load(), observed: nil, now: now)
        #expect(due.changes.filter { $0.action == .rotate }.count == 2)
        var onlyWeb = due
        onlyWeb.changes = due.changes.filter { $0.token?.name == "web" }
        let report = try await world.apply(onlyWeb, [web, api], at: 31 * Self.day)
        #expect(report.outcomes.map(\.change) == onlyWeb.changes, "exactly the listed changes")
        #expect(try await world.versions("web").count == 2)
        #expect(try await world.versions("api").count == 1, "api was due, but not in the plan")

        // Undeliver: web no longer goes to store b.
        let webToA = World.token("web", stores: ["a"])
        let (moved, movedReport) = try await world.reconcile([webToA, api], at: 31 * Self.day + 60)
        #expect(moved.changes.contains { $0.action == .undeliver && $0.token?.name == "web" })
        #expect(movedReport.failures.filter { $0.change.action == .undeliver }.isEmpty)
        #expect(!world.b.keys.contains("apps/web") && world.a.keys.contains("apps/web"))
    }

    @Test func aRotationWithoutOverlapRetiresItsPredecessorOnlyOnceItSucceeded() async throws {
        let world = try World()
        let web = World.token("web", overlap: 0)
        _ = try await world.reconcile([web], at: 0)
        let v1 = try #require(try await world.versions("web").first?.credentialID)

        // The issuer refuses: the rotation fails, so the listed retirement of v1 is not carried out.
        world.issuer.failures.withLock { $0.issue = true }
        let (plan, failed) = try await world.reconcile([web], at: 31 * Self.day)
        #expect(plan.changes.map(\.action) == [.rotate, .retire])
        #expect(failed.outcomes.map(\.failure) == [.issuerFailed(issuer: "mem", detail: "the issuer refused (injected)"),
                                                   .rotationIncomplete(version: 1)])
        #expect(world.issuer.valid.contains(v1), "v1 stays valid: it is still the only credential")
        #expect(try await world.versions("web").first { $0.version == 1 }?.status == .active)

        world.issuer.failures.withLock { $0.issue = false }
        let (retried, report) = try await world.reconcile([web], at: 31 * Self.day + 60)
        #expect(retried.changes.map(\.action) == [.rotate, .retire], "the pending v2 is settled by repair, not by apply")
        #expect(report.failures.isEmpty, "\(report.failures.map(\.failure))")
        #expect(!world.issuer.valid.contains(v1))
        #expect(try await world.versions("web").filter { $0.status == .active }.count == 1)
    }

    @Test func aRevocationThatFailsLeavesTheVersionToRetireAgain() async throws {
        let world = try World()
        let web = World.token("web"), api = World.token("api")
        _ = try await world.reconcile([web, api], at: 0)
        world.issuer.failures.withLock { $0.revoke = true }
        let (plan, failed) = try await world.reconcile([web], at: 60)
        #expect(plan.changes.map(\.action) == [.retire])
        #expect(failed.outcomes.first?.failure == .issuerFailed(issuer: "mem", detail: "revocation refused (injected)"))
        #expect(try await world.versions("api").first?.status == .active, "not recorded as revoked")
        #expect(world.a.keys.contains("apps/api"), "nor removed from the stores")

        world.issuer.failures.withLock { $0.revoke = false }
        let (_, retried) = try await world.reconcile([web], at: 120)
        #expect(retried.failures.isEmpty)
        #expect(try await world.versions("api").isEmpty, "retired and forgotten")
        #expect(!world.a.keys.contains("apps/api"))
    }

    @Test func aStoreThatCannotBeCleanedLeavesTheRetirementToFinish() async throws {
        let world = try World()
        let web = World.token("web"), api = World.token("api")
        _ = try await world.reconcile([web, api], at: 0)
        world.b.failing.withLock { $0 = true }
        let (_, failed) = try await world.reconcile([web], at: 60)
        #expect(failed.outcomes.first?.failure == .storeNotCleaned(store: "b", detail: "cannot write 'memory' (injected failure); check that the directory exists, is writable and has free space, then re-run"))
        #expect(try await world.versions("api").first?.status == .active, "not recorded as retired while a store holds it")

        world.b.failing.withLock { $0 = false }
        let (_, retried) = try await world.reconcile([web], at: 120)
        #expect(retried.failures.isEmpty)
        #expect(!world.b.keys.contains("apps/api") && !world.a.keys.contains("apps/api"))
    }

    @Test func anUndeliveryFromAStoreNoLongerInTheManifestsForgetsTheDelivery() async throws {
        let world = try World()
        let web = World.token("web")
        _ = try await world.reconcile([web], at: 0)
        // Store b is gone from the manifests (so from the drivers), and from web's deliverTo.
        let recorded = try await world.state.load()
        let plan = Planner.plan(desired: World.manifests([World.token("web", stores: ["a"])]), recorded: recorded, observed: nil, now: .at(60))
        #expect(plan.changes.map(\.action) == [.undeliver])
        let engine = Engine(drivers: Drivers(issuers: ["mem": world.issuer], stores: ["a": world.a], state: world.state))
        let report = try await engine.apply(plan, desired: World.manifests([World.token("web", stores: ["a"])]), state: recorded, now: .at(60))
        #expect(report.failures.isEmpty, "\(report.failures.map(\.failure))")
        #expect(try await world.versions("web").last?.deliveries.map(\.store) == ["a"])
    }

    @Test func deliveryFailuresAreTypedAndLoseNoCredential() async throws {
        let world = try World()
        let web = World.token("web")
        // Every store fails: the new credential is revoked and recorded so; nothing is active.
        world.a.failing.withLock { $0 = true }
        world.b.failing.withLock { $0 = true }
        let (_, none) = try await world.reconcile([web], at: 0)
        guard case .undelivered(.storeFailed, revokeFailed: false)? = none.outcomes.first?.failure else {
            Issue.record("expected an undelivered failure, got \(String(describing: none.outcomes.first?.failure))")
            return
        }
        #expect(world.issuer.valid.isEmpty, "the undelivered credential was revoked")
        #expect(try await world.versions("web").allSatisfy { $0.status == .revoked })

        // One store fails: the credential is active, delivered to the other, and the failure says which.
        world.a.failing.withLock { $0 = false }
        let (_, partly) = try await world.reconcile([web], at: 60)
        guard case .partlyDelivered(let failures)? = partly.outcomes.first?.failure else {
            Issue.record("expected a partial delivery, got \(String(describing: partly.outcomes.first?.failure))")
            return
        }
        #expect(failures.count == 1)
        #expect(try await world.versions("web").last?.status == .active)
        #expect(world.a.keys == ["apps/web"] && world.b.keys.isEmpty)

        // An undelivery that fails keeps the delivery recorded.
        let webToA = World.token("web", stores: ["a"])
        world.b.failing.withLock { $0 = false }
        let (_, redelivered) = try await world.reconcile([web], at: 120)
        #expect(redelivered.failures.isEmpty && world.b.keys == ["apps/web"])
        world.b.failing.withLock { $0 = true }
        let (_, stuck) = try await world.reconcile([webToA], at: 180)
        #expect(stuck.outcomes.first?.failure == .undeliveryFailed(store: "b", detail: "cannot write 'memory' (injected failure); check that the directory exists, is writable and has free space, then re-run"))
        #expect(try await world.versions("web").last?.deliveries.map(\.store).sorted() == ["a", "b"])
    }

    /// A token moving to another store keeps the old one until the new one holds its secret.
    @Test func aMoveKeepsTheOldDeliveryWhenTheNewOneFails() async throws {
        let world = try World()
        _ = try await world.reconcile([World.token("web", stores: ["a"])], at: 0)
        world.b.failing.withLock { $0 = true }
        let (plan, report) = try await world.reconcile([World.token("web", stores: ["b"])], at: 60)
        #expect(plan.changes.map(\.action) == [.redeliver, .undeliver])
        #expect(report.outcomes.map(\.failure) == [.storeFailed(store: "b", detail: "cannot write 'memory' (injected failure); check that the "
                                                                + "directory exists, is writable and has free space, then re-run"),
                                                   .redeliveryIncomplete(version: 1)])
        #expect(world.a.keys == ["apps/web"], "the secret stays where it was")
        #expect(try await world.versions("web").first?.deliveries.map(\.store) == ["a"])
    }
}
