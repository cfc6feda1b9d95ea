import Testing
@testable import TokenctlController
import TokenctlModel
import TokenctlPlanner

@Suite struct FleetSnapshotTests {
    let now = ts(1_000 * day)

    @Test func countsByIssuerAndHealth() {
        let rows = [
            row("a", issuer: "github"), row("b", issuer: "github"), row("c", issuer: "github", health: .expired),
            row("d", issuer: "builtin", health: .rotationDue), row("e", issuer: "builtin", version: nil, health: .needsAttention),
        ]
        let fleet = FleetSnapshot(rows: rows, now: now)
        #expect(fleet.tokensByIssuerAndHealth == [
            .init(issuer: "github", health: .ok): 2,
            .init(issuer: "github", health: .expired): 1,
            .init(issuer: "builtin", health: .rotationDue): 1,
            .init(issuer: "builtin", health: .needsAttention): 1,
        ])
        #expect(fleet.tokensByIssuerAndHealth.values.reduce(0, +) == rows.count)
    }

    @Test func emptyFleet() {
        let fleet = FleetSnapshot(rows: [], now: now)
        #expect(fleet.tokensByIssuerAndHealth.isEmpty)
        #expect(fleet.secondsUntilEarliestExpiry == nil)
        #expect(fleet.unusedTokens == 0)
    }

    @Test func earliestExpiry() {
        let rows = [
            row("a", expiresAt: now + secs(10 * day)),
            row("b", expiresAt: now + secs(3_600)),
            row("c"),
            row("d", expiresAt: now + secs(90 * day)),
        ]
        #expect(FleetSnapshot(rows: rows, now: now).secondsUntilEarliestExpiry == 3_600)
    }

    @Test func earliestExpiryIsNegativeForAnExpiredCredential() {
        let rows = [row("a", expiresAt: now + secs(100)), row("b", expiresAt: ts(now.secondsSinceEpoch - 50), health: .expired)]
        #expect(FleetSnapshot(rows: rows, now: now).secondsUntilEarliestExpiry == -50)
    }

    @Test func noExpiryWhenNothingExpires() {
        let rows = [row("a"), row("b", version: nil, health: .needsAttention)]
        #expect(FleetSnapshot(rows: rows, now: now).secondsUntilEarliestExpiry == nil)
    }

    @Test func countsUnusedTokensWithTheDefault30Days() {
        let rows = [
            row("used-recently", lastUsedAt: ts(now.secondsSinceEpoch - 2 * day), managedSince: ts(now.secondsSinceEpoch - 400 * day)),
            row("used-long-ago", lastUsedAt: ts(now.secondsSinceEpoch - 31 * day), managedSince: ts(now.secondsSinceEpoch - 400 * day)),
            row("never-used-old", issuedAt: ts(now.secondsSinceEpoch - 1 * day), managedSince: ts(now.secondsSinceEpoch - 60 * day)),
            row("never-used-new", issuedAt: ts(now.secondsSinceEpoch - 1 * day), managedSince: ts(now.secondsSinceEpoch - 1 * day)),
            row("no-version", version: nil, managedSince: ts(now.secondsSinceEpoch - 400 * day), health: .needsAttention),
        ]
        #expect(FleetSnapshot(rows: rows, now: now).unusedTokens == 2)
        #expect(FleetSnapshot(rows: rows, now: now, unusedAfter: secs(500 * day)).unusedTokens == 0)
        #expect(FleetSnapshot(rows: rows, now: now, unusedAfter: secs(12 * 3_600)).unusedTokens == 4)
    }
}

@Suite struct UnusedTokensTests {
    let now = ts(1_000 * day)
    let thirtyDays = secs(30 * day)

    func ago(_ seconds: Int64) -> Timestamp { ts(1_000 * day - seconds) }

    @Test func lastUseOlderThanTheThresholdIsUnused() {
        #expect(UnusedTokens.isUnused(row("a", lastUsedAt: ago(31 * day), managedSince: ago(90 * day)), now: now, threshold: thirtyDays))
    }

    @Test func recentLastUseIsNotUnused() {
        // Any version's use counts (the row carries the latest over all versions), however old the token.
        #expect(!UnusedTokens.isUnused(row("a", issuedAt: ago(60 * day), lastUsedAt: ago(29 * day), managedSince: ago(900 * day)),
                                       now: now, threshold: thirtyDays))
    }

    @Test func exactlyAtTheThresholdCountsAsUnused() {
        #expect(UnusedTokens.isUnused(row("a", lastUsedAt: ago(30 * day)), now: now, threshold: thirtyDays))
        #expect(!UnusedTokens.isUnused(row("a", lastUsedAt: ago(30 * day - 1)), now: now, threshold: thirtyDays))
    }

    @Test func neverUsedCountsFromManagedSinceNotTheLatestIssue() {
        // Rotated weekly (active version issued 2 days ago) but never used since it was first issued 40 days ago.
        #expect(UnusedTokens.isUnused(row("a", issuedAt: ago(2 * day), managedSince: ago(40 * day)), now: now, threshold: thirtyDays))
        // First issued yesterday: new, not unused.
        #expect(!UnusedTokens.isUnused(row("b", issuedAt: ago(1 * day), managedSince: ago(1 * day)), now: now, threshold: thirtyDays))
    }

    @Test func neverUsedWithoutManagedSinceFallsBackToIssuedAt() {
        #expect(UnusedTokens.isUnused(row("a", issuedAt: ago(45 * day)), now: now, threshold: thirtyDays))
        #expect(!UnusedTokens.isUnused(row("b", issuedAt: ago(5 * day)), now: now, threshold: thirtyDays))
    }

    @Test func aTokenWithoutAnActiveVersionIsNeverUnused() {
        #expect(!UnusedTokens.isUnused(row("a", version: nil, issuedAt: ago(400 * day), lastUsedAt: ago(400 * day),
                                           managedSince: ago(400 * day), health: .needsAttention),
                                       now: now, threshold: thirtyDays))
    }

    @Test func noDatesAtAllIsNotUnused() {
        #expect(!UnusedTokens.isUnused(row("a"), now: now, threshold: thirtyDays))
    }
}

@Suite struct ExpiryOutlookTests {
    let now = ts(1_000 * day)
    let location = SourceLocation(file: "t.yaml", line: 1, column: 1)

    func token(_ name: String, lifespan: Lifespan, exceptionExpires: Timestamp?) -> Token {
        Token(id: TokenID(namespace: "default", name: name), owner: "team", metadata: ResourceMetadata(name: name, location: location),
              issuer: "builtin", scopes: ["read"], lifespan: lifespan, rotation: Token.Rotation(every: nil, overlap: TokenDuration(seconds: 0)),
              deliverTo: [],
              exception: exceptionExpires.map { Token.Exception(reason: "legacy", approvedBy: "sec", ticket: "SEC-1", expires: $0,
                                                                 expiresText: "\($0)", location: location) },
              locations: Token.Locations(issuer: location, lifespan: location, rotationEvery: nil, scopes: [location], owner: location))
    }

    @Test func aPermanentTokensExceptionIsItsExpiryAndNothingRotatesIt() {
        let desired = ManifestSet(tokens: [token("forever", lifespan: .never, exceptionExpires: now + secs(2 * day))])
        let fleet = FleetSnapshot(rows: [row("forever")], now: now, desired: desired)
        #expect(fleet.expiring[.init(issuer: "builtin", within: .days3, rotation: .none)] == 1)
        #expect(fleet.expiring[.init(issuer: "builtin", within: .day1, rotation: .none)] == nil)
        #expect(fleet.expiries.map(\.expiresAt) == [now + secs(2 * day)])
        // Without the manifests there is nothing to know: a permanent token has no credential expiry.
        #expect(FleetSnapshot(rows: [row("forever")], now: now).expiring.isEmpty)
    }

    @Test func aTokenHeldByPolicyIsNotRotatedInTime() {
        let rows = [row("held", expiresAt: now + secs(day), nextRotationAt: now + secs(3_600))]
        #expect(FleetSnapshot(rows: rows, now: now).expiring[.init(issuer: "builtin", within: .day1, rotation: .scheduled)] == 1)
        let held = FleetSnapshot(rows: rows, now: now, held: [TokenID(namespace: "default", name: "held")])
        #expect(held.expiring[.init(issuer: "builtin", within: .day1, rotation: .none)] == 1)
        #expect(held.expiring[.init(issuer: "builtin", within: .day1, rotation: .scheduled)] == nil)
    }

    @Test func aTokenWithoutACredentialHasNoExpiry() {
        let fleet = FleetSnapshot(rows: [row("new", version: nil, expiresAt: nil, health: .needsAttention)], now: now)
        #expect(fleet.expiring.isEmpty)
        #expect(fleet.expiries.isEmpty)
    }
}
