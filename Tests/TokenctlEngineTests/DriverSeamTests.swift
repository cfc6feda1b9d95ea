import Foundation
import TestSupport
import Testing
import TokenctlDrivers
import TokenctlEngine
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlSQLite
import TokenctlStandardDrivers

/// Issuer and store types plug in through the registry: a type defined only in these tests is decoded, validated,
/// opened and driven like a shipped one, and a write-only store survives a crash between issue and delivery.
@Suite struct DriverSeamTests {
    /// Manifests with the test-only types: issuer `mem` (type memory), store `sink` (type write-only-memory).
    static func writeManifests(label: String = "label", deliverTo: String = "[{store: sink}]") throws -> String {
        let directory = Scratch.directory("seam")
        try """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: mem}
            spec:
              type: memory
              memory: {\(label): one}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: sink}
            spec:
              type: write-only-memory
              writeOnlyMemory: {label: two}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: sink2}
            spec:
              type: write-only-memory
              writeOnlyMemory: {label: three}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: web, namespace: apps, owner: team}
            spec:
              issuer: mem
              scopes: [read]
              lifespan: 90d
              rotation: {every: 30d, overlap: 1d}
              deliverTo: \(deliverTo)
            """.write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        return directory
    }

    /// A world whose issuer and store are the test types, opened through the registry like the shipped ones.
    struct SeamWorld {
        let registry: DriverRegistry
        var manifests: ManifestSet
        let stateDirectory: String
        let store: WriteOnlyStore

        init(issuer: any CredentialIssuer, store: WriteOnlyStore = WriteOnlyStore()) throws {
            registry = DriverRegistry.standard.adding(issuers: [MemoryIssuerKind(issuer)], stores: [WriteOnlyStoreKind(store: store)])
            let loaded = ManifestLoader(registry: registry).load(paths: [try DriverSeamTests.writeManifests()], now: World.t0)
            try #require(loaded.diagnostics.isEmpty, "\(loaded.diagnostics.map(\.message))")
            manifests = loaded.manifests
            stateDirectory = Scratch.directory("seam-state")
            self.store = store
        }

        /// The same world with the token delivering to `deliverTo` as well.
        func delivering(to deliverTo: String) throws -> SeamWorld {
            var world = self
            let loaded = ManifestLoader(registry: registry).load(paths: [try DriverSeamTests.writeManifests(deliverTo: deliverTo)], now: World.t0)
            try #require(loaded.diagnostics.isEmpty, "\(loaded.diagnostics.map(\.message))")
            world.manifests = loaded.manifests
            return world
        }

        /// An engine on a fresh connection to the state, as a new process would open it.
        func engine(checkpoint: @escaping @Sendable (String) async -> Void = { _ in }) throws -> Engine {
            let state = try SQLiteStateStore(directory: stateDirectory, mode: .readWrite)
            let drivers = try DriverSetup(registry: registry, stateDirectory: stateDirectory).open(manifests, state: state)
            return Engine(drivers: drivers, checkpoint: checkpoint)
        }

        /// Repairs what an earlier run left, plans at `seconds` after t0 and applies the plan.
        func reconcile(at seconds: Int64) async throws -> (notes: [RepairNote], report: ApplyReport) {
            let engine = try engine()
            let now = Timestamp.at(seconds)
            let notes = try await engine.repair(state: try await engine.drivers.state.load(), now: now)
            let recorded = try await engine.drivers.state.load()
            let plan = Planner.plan(desired: manifests, recorded: recorded, observed: nil, now: now)
            return (notes, try await engine.apply(plan, desired: manifests, state: recorded, now: now))
        }

        /// Runs the first apply until `point`, where it stops for good (a crash).
        func crashFirstApply(at point: String) async throws {
            let crash = CrashPoint(point)
            let engine = try engine(checkpoint: crash.checkpoint)
            let manifests = manifests
            let plan = Planner.plan(desired: manifests, recorded: try await engine.drivers.state.load(), observed: nil, now: .at(0))
            Task { _ = try await engine.apply(plan, desired: manifests, state: try await engine.drivers.state.load(), now: .at(0)) }
            await crash.reached()
        }

        func versions() async throws -> [CredentialVersion] {
            try await SQLiteStateStore(directory: stateDirectory, mode: .readOnly).load().tokens[TokenID(namespace: "apps", name: "web")]?.versions ?? []
        }
    }

    @Test func aTypeRegisteredOnlyInTestsIsDecodedValidatedAndDriven() async throws {
        let issuer = MemoryIssuer()
        let world = try SeamWorld(issuer: issuer)
        let mem = try #require(world.manifests.issuers["mem"])
        #expect(mem.driver.type == "memory" && mem.driver.settings(as: MemorySettings.self)?.label == "one")
        #expect(mem.capabilities == [.inventory, .idempotencyLookup, .overlap])
        #expect(world.manifests.stores["sink"]?.capabilities == [], "write-only")

        // The type's own section is checked by its kind, in the decoder's words and places.
        let misspelt = ManifestLoader(registry: world.registry).load(paths: [try Self.writeManifests(label: "lable")], now: World.t0)
        let messages = misspelt.diagnostics.map { "\($0.location.map { "\($0.line):\($0.column)" } ?? "-") \($0.message)" }
        #expect(messages.contains("6:12 unknown field 'lable' in Issuer spec.memory (did you mean 'label'?); known fields: label"), "\(messages)")
        #expect(messages.contains("6:11 missing required field 'label' in Issuer spec.memory"), "\(messages)")
        // Without the registration, the type does not exist.
        let unregistered = ManifestLoader(registry: .standard).load(paths: [try Self.writeManifests()], now: World.t0)
        #expect(unregistered.diagnostics.contains { $0.message.hasPrefix("invalid value 'memory' for 'type'") })

        let (_, report) = try await world.reconcile(at: 0)
        #expect(report.failures.isEmpty, "\(report.failures.map(\.failure))")
        let active = try #require(try await world.versions().first { $0.status == .active })
        #expect(world.store.fingerprint("apps/web") == active.deliveries.first?.contentFingerprint)
        #expect(issuer.valid == [active.credentialID])
    }

    /// Without a way to get the secret again, repair revokes what the crashed run issued, and the same run issues anew;
    /// the write-only store ends up holding the live credential, whatever it received before the crash.
    @Test(arguments: ["after-issue", "after-record-issue", "after-deliver"])
    func aWriteOnlyStoreSurvivesACrashBetweenIssueAndDelivery(at point: String) async throws {
        let issuer = MemoryIssuer()
        let world = try SeamWorld(issuer: issuer)
        try await world.crashFirstApply(at: point)
        #expect(try await world.versions().map(\.status) == [.pending])
        let issuedBeforeCrash = issuer.valid
        #expect(issuedBeforeCrash.count == 1)

        let (notes, report) = try await world.reconcile(at: 60)
        #expect(notes.map(\.outcome) == [.rolledBack], "\(notes)")
        #expect(report.failures.isEmpty, "\(report.failures.map(\.failure))")
        let versions = try await world.versions()
        #expect(versions.map(\.status) == [.revoked, .active])
        let active = try #require(versions.last)
        #expect(issuer.valid == [active.credentialID], "the crashed run's credential is revoked; only the new one is valid")
        #expect(issuedBeforeCrash.isDisjoint(with: issuer.valid))
        #expect(world.store.fingerprint("apps/web") == active.deliveries.first?.contentFingerprint,
                "the store holds the live credential's secret")
        let (_, again) = try await world.reconcile(at: 120)
        #expect(again.outcomes.isEmpty, "converged: \(again.outcomes.map(\.change.action))")
    }

    /// An issuer that replays secrets lets repair finish the delivery: the credential issued before the crash is the
    /// one that ends up active, and nothing is issued twice.
    @Test(arguments: ["after-issue", "after-record-issue", "after-deliver"])
    func aReplayingIssuerLetsRepairFinishTheDelivery(at point: String) async throws {
        let base = MemoryIssuer()
        let world = try SeamWorld(issuer: ReplayingIssuer(base: base))
        #expect(world.manifests.issuers["mem"]?.capabilities.contains(.replaysSecrets) == true)
        try await world.crashFirstApply(at: point)
        let issuedBeforeCrash = base.valid

        let (notes, report) = try await world.reconcile(at: 60)
        #expect(notes.map(\.outcome) == [.completed], "\(notes)")
        #expect(report.outcomes.isEmpty, "nothing left to do: \(report.outcomes.map(\.change.action))")
        let versions = try await world.versions()
        #expect(versions.map(\.status) == [.active])
        #expect(base.valid == issuedBeforeCrash && base.valid == [versions[0].credentialID], "nothing issued twice")
        #expect(world.store.fingerprint("apps/web") == versions[0].deliveries.first?.contentFingerprint)
    }

    /// Retiring an old version from a write-only store removes nothing its successor delivered under the same key:
    /// tokenctl cannot look, so it goes by its own records.
    @Test func retiringFromAWriteOnlyStoreKeepsTheSuccessorsSecret() async throws {
        let issuer = MemoryIssuer()
        let world = try SeamWorld(issuer: issuer)
        _ = try await world.reconcile(at: 0)
        _ = try await world.reconcile(at: 31 * 86_400)  // rotation: v2 active, v1 retiring for a day
        let (_, retired) = try await world.reconcile(at: 33 * 86_400)
        #expect(retired.outcomes.map(\.change.action) == [.retire] && retired.failures.isEmpty)
        let versions = try await world.versions()
        #expect(versions.map(\.status) == [.revoked, .active])
        #expect(world.store.fingerprint("apps/web") == versions[1].deliveries.first?.contentFingerprint)
    }

    /// A new destination for a secret that sits only in write-only stores cannot be filled from them: the plan
    /// rotates instead of listing a redelivery that could only fail. An issuer that replays secrets redelivers.
    @Test func aNewDestinationOfAWriteOnlySecretRotatesUnlessTheIssuerReplays() async throws {
        let both = "[{store: sink}, {store: sink2, key: apps/web-copy}]"
        let plain = try SeamWorld(issuer: MemoryIssuer())
        _ = try await plain.reconcile(at: 0)
        let widened = try plain.delivering(to: both)
        let plan = Planner.plan(desired: widened.manifests, recorded: try await widened.engine().drivers.state.load(), observed: nil, now: .at(60))
        #expect(plan.changes.map(\.action) == [.rotate] && plan.changes.first?.reason == .deliveryLost, "\(plan.changes.map(\.detail))")
        let (_, rotated) = try await widened.reconcile(at: 60)
        #expect(rotated.failures.isEmpty, "\(rotated.failures.map(\.failure))")
        let active = try #require(try await widened.versions().last)
        #expect(active.status == .active && active.version == 2)
        #expect(widened.store.fingerprint("apps/web") == active.deliveries.first { $0.key == "apps/web" }?.contentFingerprint)
        #expect(widened.store.fingerprint("apps/web-copy") == active.deliveries.first { $0.key == "apps/web-copy" }?.contentFingerprint)

        let replaying = try SeamWorld(issuer: ReplayingIssuer(base: MemoryIssuer()))
        _ = try await replaying.reconcile(at: 0)
        let replayWidened = try replaying.delivering(to: both)
        let (_, redelivered) = try await replayWidened.reconcile(at: 60)
        #expect(redelivered.outcomes.map(\.change.action) == [.redeliver] && redelivered.failures.isEmpty,
                "\(redelivered.outcomes.map { "\($0.change.action) \($0.failure?.description ?? "ok")" })")
        let versions = try await replayWidened.versions()
        #expect(versions.count == 1)
        #expect(replayWidened.store.fingerprint("apps/web-copy") == versions[0].deliveries.first { $0.key == "apps/web-copy" }?.contentFingerprint)
    }
}
