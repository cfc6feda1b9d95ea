import Testing
import TokenctlManifest
import TokenctlModel

/// Policy rules, judged against a fixed clock.
@Suite struct PolicyTests {
    @Test func scopesOutsideTheOwnersRulesAreViolations() {
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read, billing:write]\n  lifespan: 90d\n"))
        #expect(result.found == [Found(file: "t.yaml", line: 9, column: 25, code: "scope-not-allowed")])
        #expect(result.diagnostics.first?.severity == .policy)
        #expect(!result.hasErrors && result.hasPolicyViolations)
        #expect(result.messages("scope-not-allowed").first?.contains("owner 'team-payments' may hold orders:*, reports:read") == true)
    }

    @Test func ownersWithoutARuleHoldNoScopes() {
        let result = Fixture.load(Fixture.token(owner: "team-other", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 90d\n"))
        #expect(result.found.map(\.code) == ["scope-not-allowed"])
    }

    @Test func maximumLifespanAndRotation() {
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 400d\n  rotation: {every: 100d}\n"))
        #expect(result.found == [
            Found(file: "t.yaml", line: 10, column: 13, code: "max-lifespan"),
            Found(file: "t.yaml", line: 11, column: 21, code: "max-rotation"),
        ])
    }

    @Test func defaultRotationIsJudgedToo() {
        // 180d lifespan rotates every 120d by default, more than the 90d maximum.
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 180d\n"))
        #expect(result.found == [Found(file: "t.yaml", line: 10, column: 13, code: "max-rotation")])
    }

    static let permanent = Fixture.token(spec: """
          issuer: local
          scopes: [orders:read]
          lifespan: never
          exception:
            reason: legacy partner cannot rotate
            approvedBy: security-team
            ticket: SEC-42
            expires: 2027-03-01
        """)

    @Test func permanentTokensNeedAnException() {
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: never\n"))
        #expect(result.found == [Found(file: "t.yaml", line: 10, column: 13, code: "permanent-token")])
    }

    @Test func anExceptionHoldsThroughItsLastDay() throws {
        #expect(Fixture.load(Self.permanent, now: try Timestamp(parsing: "2027-03-01T23:59:59Z")).found.map(\.code) == ["exception-expiring"])
        #expect(Fixture.load(Self.permanent, now: try Timestamp(parsing: "2026-11-29")).found.isEmpty)
        let expired = Fixture.load(Self.permanent, now: try Timestamp(parsing: "2027-03-02"))
        #expect(expired.found == [Found(file: "t.yaml", line: 15, column: 14, code: "exception-expired")])
        #expect(expired.hasPolicyViolations && !expired.hasErrors)
    }

    @Test func incompleteExceptionIsAnError() {
        let result = Fixture.load(Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: never
              exception: {reason: legacy, approvedBy: security-team}
            """))
        #expect(result.found.map(\.code) == ["missing-field", "missing-field"])
        #expect(result.messages("missing-field").allSatisfy { $0.contains("exception") })
    }

    @Test func denyRuleRefusesEvenWithAnException() {
        let policy = Fixture.base.replacingOccurrences(of: "permanentTokens: requireException", with: "permanentTokens: deny")
        let result = Fixture.load(["t.yaml": Self.permanent, "base.yaml": policy], withBase: false)
        #expect(result.found.map(\.code) == ["permanent-token"])
    }

    @Test func withoutAnyPolicyPermanentTokensStillNeedAnException() {
        let base = Fixture.base.components(separatedBy: "---\n").prefix(2).joined(separator: "---\n")
        let result = Fixture.load(["t.yaml": Fixture.token(spec: "  issuer: local\n  scopes: [x]\n  lifespan: never\n"), "base.yaml": base],
                                  withBase: false)
        #expect(result.found.map(\.code) == ["permanent-token"])
    }
}
