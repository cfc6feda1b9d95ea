import Testing
import TokenctlManifest
import TokenctlModel

/// Event texts live in a per-document buffer, labels are shared between documents that repeat them, and
/// keys are matched without becoming strings: these tests pin down that none of it changes what is decoded.
@Suite struct EventTextTests {
    private static func token(_ name: String, labels: String, annotations: String = "{}") -> String {
        """
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: payments, owner: team-payments, labels: \(labels), annotations: \(annotations)}
        spec: {issuer: local, scopes: [orders:read], lifespan: 90d}
        """
    }

    @Test func labelMapsAreSharedOnlyWhenEqual() {
        let documents = [
            Self.token("a", labels: "{env: prod, tier: backend}", annotations: "{ticket: SEC-1}"),
            Self.token("b", labels: "{env: prod, tier: backend}", annotations: "{ticket: SEC-2}"),
            Self.token("c", labels: "{tier: backend, env: prod}"),
            Self.token("d", labels: "{env: prod, tier: frontend}"),
            Self.token("e", labels: "{env: prod}"),
            Self.token("f", labels: "{env: prod, tier: frontend, zone: eu}"),
            Self.token("g", labels: "{}"),
            Self.token("h", labels: "{env: staging, tier: frontend}"),
        ]
        let result = Fixture.load(documents.joined(separator: "\n---\n"))
        #expect(result.diagnostics.isEmpty)
        let labels = Dictionary(uniqueKeysWithValues: result.manifests.tokens.map { ($0.id.name, $0.metadata.labels) })
        #expect(labels["a"] == ["env": "prod", "tier": "backend"])
        #expect(labels["b"] == ["env": "prod", "tier": "backend"])
        #expect(labels["c"] == ["env": "prod", "tier": "backend"])
        #expect(labels["d"] == ["env": "prod", "tier": "frontend"])
        #expect(labels["e"] == ["env": "prod"])
        #expect(labels["f"] == ["env": "prod", "tier": "frontend", "zone": "eu"])
        #expect(labels["g"] == [:])
        #expect(labels["h"] == ["env": "staging", "tier": "frontend"])
        let annotations = Dictionary(uniqueKeysWithValues: result.manifests.tokens.map { ($0.id.name, $0.metadata.annotations) })
        #expect(annotations["a"] == ["ticket": "SEC-1"])
        #expect(annotations["b"] == ["ticket": "SEC-2"])
        #expect(annotations["c"] == [:])
    }

    @Test func valuesReadBeforeTheKindOutliveTheDocumentEnd() {
        // `spec` and `metadata` come before `kind`, so their events are held and decoded after the document ends;
        // the next document must not disturb them, and its own texts must not leak into them.
        let result = Fixture.load("""
            spec: {issuer: local, scopes: &s [orders:read, reports:read], lifespan: 30d, rotation: {every: 10d}}
            metadata: {name: early-bird, namespace: payments, owner: team-payments, labels: {long-label-key-over-fifteen: long-label-value-over-fifteen}}
            kind: Token
            apiVersion: tokenctl/v1
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: second-token-with-a-long-name, namespace: payments, owner: team-payments}
            spec: {issuer: local, scopes: [orders:write], lifespan: 60d}
            """)
        #expect(result.diagnostics.isEmpty)
        let tokens = result.manifests.tokens
        #expect(tokens.map(\.id.name) == ["early-bird", "second-token-with-a-long-name"])
        #expect(tokens.first?.scopes == ["orders:read", "reports:read"])
        #expect(tokens.first?.metadata.labels == ["long-label-key-over-fifteen": "long-label-value-over-fifteen"])
        #expect(tokens.first?.rotation.every == TokenDuration(seconds: 10 * 86_400))
        #expect(tokens.last?.scopes == ["orders:write"])
    }

    @Test func anchorsEndWithTheirDocument() {
        let result = Fixture.load("""
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: a, namespace: payments, owner: team-payments}
            spec: {issuer: local, scopes: &scopes [orders:read], lifespan: 90d}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: b, namespace: payments, owner: team-payments}
            spec: {issuer: local, scopes: *scopes, lifespan: 90d}
            """)
        #expect(result.found.contains(Found(file: "t.yaml", line: 9, column: 31, code: "unknown-anchor")))
        #expect(result.manifests.tokens.isEmpty || result.manifests.tokens.map(\.id.name) == ["a"])
    }

    @Test func keysAreMatchedExactly() {
        // Prefixes, extensions and case variants of field names are unknown fields, not matches.
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scope: [a]\n  scopesx: [b]\n  Lifespan: 1d\n  lifespan: 90d\n  scopes: [orders:read]\n"))
        #expect(result.found.filter { $0.code == "unknown-field" }.map(\.line) == [9, 10, 11])
        #expect(result.messages("unknown-field").first?.contains("did you mean 'scopes'") == true)
        #expect(result.manifests.tokens.isEmpty)
    }

    @Test func aFieldWithABadValueIsNotAlsoMissing() {
        let result = Fixture.load(Fixture.token(spec: "  issuer: [local]\n  scopes: [orders:read]\n  lifespan: 90d\n"))
        #expect(result.found.map(\.code).contains("wrong-type"))
        #expect(!result.messages("missing-field").contains { $0.contains("'issuer'") })
    }
}
