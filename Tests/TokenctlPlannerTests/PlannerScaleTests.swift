import TestSupport
import Testing
import TokenctlModel
import TokenctlPlanner

/// A large world (more tokens than the planner plans in one piece), varied deterministically by index.
private struct LargeWorld {
    var desired: [Token] = []
    var records: [RecordedToken] = []
    var observation = Observation()

    init(count: Int) {
        let windows: [String?] = [nil, "Mon-Fri 09:00-17:00 UTC", nil, "Sat,Sun 09:00-17:00 UTC", "daily 22:00-02:00 UTC"]
        let everies: [String?] = [nil, "7d", "30d", "60d"]
        let issuers = ["local", "ext", "strict", "pg"]
        for index in 0..<count {
            let id = "ns\(index % 7)/token-\(index)"
            let issuer = issuers[index % 4]
            let scopes = index % 11 == 0 ? ["read", "write"] : ["read"]
            if index % 13 != 0 {
                desired.append(token(id, every: everies[index % 4], window: windows[index % 5], scopes: scopes, issuer: issuer,
                                     deliverTo: [("vault", id)] + (index % 17 == 0 ? [("file", "\(index).env")] : [])))
            }
            guard index % 6 != 0 else { continue }
            let issuedAt = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - Int64(index * 37 % 2_400) * 3_600)
            var versions = [version(2, issuedAt: issuedAt, deliveries: [("vault", id, "fp")])]
            if index % 5 == 0 {
                let retireAfter = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + Int64(index % 48 - 24) * 3_600)
                versions.insert(version(1, issuedAt: ago("100d"), status: .retiring, retireAfter: retireAfter), at: 0)
            }
            let entry = recorded(id, issuer: issuer, versions: versions)
            records.append(entry)
            if index % 19 != 0 {
                observation.inventories[issuer, default: []] += entry.versions.map { observed(issuer, $0.credentialID) }
            }
            if index % 23 == 0 { observation.inventories[issuer, default: []].append(observed(issuer, "ghost-\(index % 3)")) }
            observation.storeContents[StoreKey(store: "vault", key: id)] = index % 29 == 0 ? "other" : "fp"
        }
    }
}

@Suite struct PlannerScaleTests {
    @Test func largePlansAreIndependentOfInputOrder() {
        let world = LargeWorld(count: 6_000)
        var rng = SplitMix64(seed: 42)
        let inOrder = Planner.plan(desired: manifests(world.desired), recorded: state(world.records), observed: world.observation, now: now)
        let shuffled = Planner.plan(desired: manifests(world.desired.shuffled(using: &rng)), recorded: state(world.records.shuffled(using: &rng)),
                                    observed: world.observation, now: now)
        #expect(inOrder == shuffled)
        #expect(inOrder.changes.count > 1_000)
    }

    @Test func largePlansAreTheUnionOfPlansOfEachToken() {
        // Planning 6,000 tokens together gives exactly the changes of planning each alone, and the earliest next due.
        let world = LargeWorld(count: 6_000)
        let whole = Planner.plan(desired: manifests(world.desired), recorded: state(world.records), observed: nil, now: now)
        let recordsByID = Dictionary(uniqueKeysWithValues: world.records.map { ($0.id, $0) })
        let desiredIDs = Set(world.desired.map(\.id))
        var parts: [Plan] = world.desired.map { token in plan([token], recordsByID[token.id].map { [$0] } ?? []) }
        parts += world.records.filter { !desiredIDs.contains($0.id) }.map { plan([], [$0]) }
        let union = parts.flatMap(\.changes)
        #expect(whole.changes.count == union.count)
        #expect(Set(whole.changes) == Set(union))
        #expect(whole.nextDueAt == parts.compactMap(\.nextDueAt).min())
    }

    @Test func changesAreOrderedByTokenWithGhostsLast() {
        let world = LargeWorld(count: 6_000)
        let plan = Planner.plan(desired: manifests(world.desired), recorded: state(world.records), observed: world.observation, now: now)
        let tokens = plan.changes.compactMap(\.token)
        #expect(tokens == tokens.sorted())
        let firstGhost = plan.changes.firstIndex { $0.action == .ghost } ?? plan.changes.endIndex
        #expect(plan.changes[firstGhost...].allSatisfy { $0.action == .ghost })
        #expect(plan.changes[firstGhost...].count >= 3)
    }
}
