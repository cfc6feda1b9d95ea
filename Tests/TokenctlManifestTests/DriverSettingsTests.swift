import Testing
import TokenctlBuiltinIssuer
import TokenctlManifest
import TokenctlModel
import TokenctlPostgresIssuer

/// Settings sections are decoded by their drivers, in the decoder's words and places: empty values, nested
/// mappings, duplicate keys and secret allowances behave as in the rest of the format.
@Suite struct DriverSettingsTests {
    static func issuer(_ spec: String, annotations: String = "") -> ManifestLoadResult {
        Fixture.load(["i.yaml": "apiVersion: tokenctl/v1\nkind: Issuer\nmetadata: {name: x\(annotations)}\nspec:\n" + spec], withBase: false)
    }

    static func messages(_ result: ManifestLoadResult) -> [String] {
        result.diagnostics.map { "\($0.location.map { "\($0.line):\($0.column)" } ?? "-") \($0.code) \($0.message)" }
    }

    @Test func anEmptyPrefixIsTheDefault() {
        let result = Self.issuer("  type: builtin\n  builtin: {prefix: ~}\n")
        #expect(result.diagnostics.isEmpty, "\(Self.messages(result))")
        #expect(result.manifests.issuers["x"]?.driver.settings(as: BuiltinIssuerSettings.self)?.prefix == "tkc")
    }

    @Test func anEmptyRequiredValueIsReportedAsMissing() {
        let result = Self.issuer("  type: postgres\n  postgres: {url: ~}\n")
        #expect(Self.messages(result) == ["6:13 missing-field missing required field 'url' in Issuer spec.postgres; refer to the admin "
                                          + "connection URL, e.g. env:PG_ADMIN_URL"])
        #expect(result.manifests.issuers.isEmpty)
    }

    @Test func nestedSectionsKeepTheirNames() {
        let duplicate = Self.issuer("  type: postgres\n  postgres:\n    url: env:PG\n    tls: {mode: require, mode: disable}\n")
        #expect(Self.messages(duplicate).contains { $0.hasPrefix("8:26 duplicate-key duplicate key 'mode' in Issuer spec.postgres.tls;") },
                "\(Self.messages(duplicate))")
        let unknown = Self.issuer("  type: postgres\n  postgres:\n    url: env:PG\n    tls: {mdoe: require}\n")
        #expect(Self.messages(unknown) == ["8:11 unknown-field unknown field 'mdoe' in Issuer spec.postgres.tls (did you mean 'mode'?); "
                                           + "known fields: mode, caFile"])
    }

    /// A value of a settings section that looks like a secret is allowed by the field name the rest of the format
    /// uses: the mapping's key and the field (`tls.caFile`).
    @Test func secretAllowancesNameNestedFieldsAsBefore() {
        let secretLike = "ghp_" + String(repeating: "a1B2", count: 9)
        let refused = Self.issuer("  type: postgres\n  postgres:\n    url: env:PG\n    tls: {caFile: \(secretLike)}\n")
        #expect(refused.diagnostics.contains { $0.code == "literal-secret" && $0.message.contains("'tls.caFile' looks like a secret") },
                "\(Self.messages(refused))")
        #expect(!Self.messages(refused).joined().contains(secretLike))
        let allowed = Self.issuer("  type: postgres\n  postgres:\n    url: env:PG\n    tls: {caFile: \(secretLike)}\n",
                                  annotations: ", annotations: {tokenctl.io/allow-secret-like: tls.caFile}")
        #expect(!allowed.hasErrors, "\(Self.messages(allowed))")
        #expect(allowed.manifests.issuers["x"]?.driver.settings(as: PostgresSettings.self)?.tlsCAFile == secretLike)
    }
}
