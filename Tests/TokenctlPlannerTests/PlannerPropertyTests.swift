import Foundation
import PropertyBased
import TestSupport
import Testing
import TokenctlModel
import TokenctlPlanner

/// A random world: desired tokens, recorded tokens and perhaps an observation, built from small integers so that
/// PropertyBased can shrink a failing case.
struct Scenario: Sendable, CustomStringConvertible {
    var desired: [Token]
    var records: [RecordedToken]
    var observation: Observation?

    private static let names = ["a", "b", "ab", "ba", "c", "orders-api-ci", "x", "y"]
    private static let namespaces = ["payments", "ops"]
    private static let windows: [String?] = [nil, "Mon-Fri 09:00-17:00 UTC", "Sat,Sun 09:00-17:00 UTC", "daily 22:00-02:00 +01:00"]
    private static let issuers = ["local", "ext", "strict", "pg"]
    private static let lifespans = ["30d", "90d", "never", "7d"]

    /// One spec per token: (id index 0...15, age in hours, every in days with 0 for the default, 19 bits of variations).
    init(specs: [(Int, Int, Int, Int)], observe: Bool) {
        var desired: [TokenID: Token] = [:]
        var recordedTokens: [TokenID: RecordedToken] = [:]
        var inventories: [String: [ObservedCredential]] = [:]
        var storeContents: [StoreKey: String?] = [:]
        for (index, (idIndex, ageHours, everyDays, flags)) in specs.enumerated() {
            func bits(_ shift: Int, _ count: Int) -> Int { (flags >> shift) & ((1 << count) - 1) }
            let id = "\(Self.namespaces[idIndex % 2])/\(Self.names[idIndex / 2 % Self.names.count])"
            let inDesired = bits(0, 1) == 1 || bits(1, 1) == 0
            let inRecorded = bits(1, 1) == 1
            let lifespan = Self.lifespans[bits(12, 2)]
            let every: String? = everyDays == 0 ? (lifespan == "never" ? "30d" : nil) : "\(everyDays)d"
            let issuer = Self.issuers[bits(4, 2)]
            let window = Self.windows[bits(2, 2)]
            let scopes = bits(6, 1) == 1 ? ["read", "write"] : ["read"]
            let deliverTo = [("vault", id)] + (bits(8, 1) == 1 ? [("file", "\(id).env")] : [])
            if inDesired, desired[tid(id)] == nil {
                desired[tid(id)] = token(id, lifespan: lifespan, every: every, overlap: bits(15, 1) == 1 ? "2d" : "1h",
                                         window: window, scopes: bits(14, 1) == 1 ? scopes.reversed() : scopes, issuer: issuer,
                                         deliverTo: deliverTo)
            }
            guard inRecorded, recordedTokens[tid(id)] == nil else { continue }
            let issuedAt = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - Int64(ageHours) * 3_600)
            var versions: [CredentialVersion] = []
            if bits(7, 1) == 1 {
                let retireAfter = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + Int64(ageHours % 97 - 48) * 3_600)
                versions.append(version(1, issuedAt: Timestamp(secondsSinceEpoch: issuedAt.secondsSinceEpoch - 30 * 86_400),
                                        status: .retiring, retireAfter: retireAfter))
            }
            let status: [CredentialStatus] = [.active, .active, .pending, .revoked]
            let recordedScopes = bits(9, 1) == 1 ? ["read"] : scopes
            // The recorded credential lives as long as the token says (none for never), or 90d (a spec change).
            let recordedLifespan: String? = bits(16, 1) == 1 ? "90d" : (lifespan == "never" ? nil : lifespan)
            versions.append(version(versions.count + 1, issuedAt: issuedAt, lifespan: recordedLifespan,
                                    scopes: recordedScopes, status: status[bits(10, 2)],
                                    deliveries: [("vault", id, "fp")] + (bits(18, 1) == 1 ? [("old", id, "fp")] : [])))
            let recordedIssuer = bits(17, 1) == 1 ? "local" : issuer
            let entry = recorded(id, issuer: recordedIssuer, versions: versions)
            recordedTokens[tid(id)] = entry
            // What the issuer and stores hold: most credentials, sometimes revoked or missing, sometimes a ghost.
            for credential in entry.versions where ageHours % 11 != 0 {
                inventories[recordedIssuer, default: []].append(
                    observed(recordedIssuer, credential.credentialID, revoked: ageHours % 13 == 0))
            }
            if ageHours % 5 == 0 { inventories[recordedIssuer, default: []].append(observed(recordedIssuer, "ghost-\(index % 2)")) }
            storeContents[StoreKey(store: "vault", key: id)] = ageHours % 7 == 0 ? String?.none : (ageHours % 3 == 0 ? "other" : "fp")
        }
        self.desired = desired.values.sorted { $0.id < $1.id }
        self.records = recordedTokens.values.sorted { $0.id < $1.id }
        self.observation = observe ? Observation(inventories: inventories, storeContents: storeContents) : nil
    }

    var description: String {
        "desired \(desired.map(\.id.description)), recorded \(records.map { "\($0.id) \($0.versions.map(\.status))" }), "
            + "observed \(observation != nil)"
    }

    func plan(at moment: Timestamp = now, shuffledBy seed: UInt64? = nil) -> Plan {
        var tokens = desired
        var recordedTokens = records
        var observation = observation
        if let seed {
            var rng = SplitMix64(seed: seed)
            tokens.shuffle(using: &rng)
            recordedTokens.shuffle(using: &rng)
            if let inventories = observation?.inventories {
                observation?.inventories = inventories.mapValues { $0.shuffled(using: &rng) }
            }
        }
        return Planner.plan(desired: ManifestSet(tokens: tokens, issuers: fixtureIssuers), recorded: state(recordedTokens),
                            observed: observation, now: moment)
    }
}


private let scenarios = zip(
    zip(Gen.int(in: 0...15), Gen.int(in: 0...2_400), Gen.int(in: 0...60), Gen.int(in: 0...0x7FFFF)).array(of: 0...14),
    Gen.bool
).map { specs, observe in Scenario(specs: specs, observe: observe) }

/// Action, token and versions of each change: what must not depend on the moment between two due dates.
private func skeleton(_ plan: Plan) -> [String] {
    plan.changes.map { "\($0.action.rawValue) \($0.token?.description ?? "-") \($0.version ?? 0)→\($0.newVersion ?? 0) \($0.ghost?.credentialID ?? "")" }
}

@Suite struct PlannerPropertyTests {
    @Test func deterministic() async {
        await propertyCheck(count: 300, input: scenarios) { scenario in
            #expect(scenario.plan() == scenario.plan())
        }
    }

    @Test func independentOfInputOrder() async {
        await propertyCheck(count: 300, input: scenarios, Gen.uint64(in: 0...UInt64.max)) { scenario, seed in
            #expect(scenario.plan(shuffledBy: seed) == scenario.plan())
        }
    }

    @Test func nextDueIsAlwaysInTheFuture() async {
        await propertyCheck(count: 300, input: scenarios, Gen.int64(in: -400 * 86_400...400 * 86_400)) { scenario, shift in
            let moment = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + shift)
            let plan = scenario.plan(at: moment)
            if let next = plan.nextDueAt { #expect(next > moment) }
        }
    }

    @Test func everyChangeHasADetailAndATokenOrAGhost() async {
        await propertyCheck(count: 300, input: scenarios) { scenario in
            for change in scenario.plan().changes {
                #expect(!change.detail.isEmpty, "\(change)")
                #expect((change.token == nil) == (change.action == .ghost), "\(change)")
                #expect((change.ghost != nil) == (change.action == .ghost), "\(change)")
                #expect(!change.retireGhost || change.action == .ghost)
            }
        }
    }

    @Test func untouchedTokensStayUntouchedUntilNextDue() async {
        // The controller applies the plan and sleeps until nextDueAt: a token the plan at `now` leaves alone must
        // still be left alone a second before nextDueAt. (Tokens that do change get new state when applied.)
        await propertyCheck(count: 300, input: scenarios) { scenario in
            let plan = scenario.plan()
            guard let next = plan.nextDueAt else { return }
            let touched = Set(plan.changes.compactMap(\.token))
            let justBefore = scenario.plan(at: Timestamp(secondsSinceEpoch: next.secondsSinceEpoch - 1))
            let appeared = justBefore.changes.filter { $0.token.map { !touched.contains($0) } ?? false }
            #expect(appeared.isEmpty, "next due \(next): \(appeared.map { "\($0.action) \($0.token?.description ?? "") \($0.reason)" })")
        }
    }

    @Test func somethingChangesAtNextDue() async {
        // Waking at nextDueAt must find something to do: otherwise the controller wakes for nothing.
        await propertyCheck(count: 300, input: scenarios) { scenario in
            let plan = scenario.plan()
            guard let next = plan.nextDueAt else { return }
            #expect(skeleton(scenario.plan(at: next)) != skeleton(plan), "next due \(next)")
        }
    }

    @Test func jsonRoundTrip() async {
        await propertyCheck(count: 100, input: scenarios) { scenario in
            let plan = scenario.plan()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(plan)
            #expect(try JSONDecoder().decode(Plan.self, from: data) == plan)
        }
    }
}
