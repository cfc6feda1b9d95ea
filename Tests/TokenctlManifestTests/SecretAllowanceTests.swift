import Testing
import TokenctlManifest
import TokenctlModel

/// A value the scanner mistakes for a secret is refused with its field named, unless its resource allows that field.
@Suite struct SecretAllowanceTests {
    static let randomLookingKey = "apps/Zk3q9XbT2mLp8RwY4vN7cJ1hG6dS5aE0"

    static func token(annotations: String) -> String {
        """
        apiVersion: tokenctl/v1
        kind: Token
        metadata:
          name: orders-api-ci
          namespace: payments
          owner: team-payments
        \(annotations)
        spec:
          issuer: local
          scopes: [orders:read]
          lifespan: 30d
          deliverTo: [{store: vault, key: "\(randomLookingKey)"}]
        """
    }

    @Test func theFieldIsNamedAndTheAllowanceSuggested() throws {
        let result = Fixture.load(Self.token(annotations: ""))
        let error = try #require(result.diagnostics.first { $0.code == "literal-secret" })
        #expect(error.message.hasPrefix("'deliverTo.key' looks like a secret: a long random string (apps…"), "\(error.message)")
        #expect(error.message.contains("allow it with the annotation tokenctl.io/allow-secret-like: deliverTo.key"))
        #expect(!error.message.contains("Zk3q9XbT2mLp8RwY4vN7cJ1hG6dS5aE0"), "the value is never echoed")
        #expect(result.manifests.tokens.isEmpty)
    }

    @Test func anAllowedFieldIsKeptWithAWarning() throws {
        let result = Fixture.load(Self.token(annotations: "  annotations: {tokenctl.io/allow-secret-like: \"deliverTo.key, exception.reason\"}"))
        #expect(!result.hasErrors, "\(result.diagnostics.map(\.message))")
        let warning = try #require(result.diagnostics.first { $0.code == SecretAllowance.code })
        #expect(warning.severity == .warning && warning.message.contains("allowed by the annotation tokenctl.io/allow-secret-like"))
        #expect(result.manifests.tokens.first?.deliverTo.first?.key == Self.randomLookingKey)
    }

    @Test func anAllowanceCoversOnlyTheFieldsItNames() {
        let result = Fixture.load(Self.token(annotations: "  annotations: {tokenctl.io/allow-secret-like: exception.reason}"))
        #expect(result.diagnostics.contains { $0.code == "literal-secret" && $0.message.hasPrefix("'deliverTo.key'") })
        #expect(result.manifests.tokens.isEmpty)
    }
}
