import Testing
import TokenctlBuiltinIssuer
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Each validation rule: the source text and the `line:col` of each expected diagnostic.
@Suite struct ValidationRuleTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var source: String
        var expected: [(line: Int, column: Int, code: String)]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "valid token", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
            """), expected: []),
        Case(name: "unknown field with suggestion", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              lifespam: 90d
            """), expected: [(11, 3, "unknown-field")]),
        Case(name: "wrong type", source: Fixture.token(spec: """
              issuer: local
              scopes: orders:read
              lifespan: 90d
            """), expected: [(9, 11, "wrong-type")]),
        Case(name: "missing required field", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
            """), expected: [(8, 3, "missing-field")]),
        Case(name: "missing owner", source: """
            apiVersion: tokenctl/v1
            kind: Token
            metadata:
              name: a
            spec: {issuer: local, scopes: [orders:read], lifespan: 9d}
            """, expected: [(4, 3, "missing-field")]),
        Case(name: "duplicate key", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              issuer: local
            """), expected: [(11, 3, "duplicate-key")]),
        Case(name: "duplicate names in a namespace", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
            """) + "\n---\n" + Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 30d
            """), expected: [(15, 9, "duplicate-name")]),
        Case(name: "dangling issuer", source: Fixture.token(spec: """
              issuer: locl
              scopes: [orders:read]
              lifespan: 90d
            """), expected: [(8, 11, "unknown-issuer")]),
        Case(name: "dangling store", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - store: vaul
                  key: payments/orders
            """), expected: [(12, 14, "unknown-store")]),
        Case(name: "rotation does not fit the lifespan", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 30d
              rotation: {every: 30d, overlap: 24h}
            """), expected: [(11, 21, "rotation-exceeds-lifespan")]),
        Case(name: "default rotation does not fit the overlap", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 30d
              rotation: {overlap: 11d}
            """), expected: [(10, 13, "rotation-exceeds-lifespan")]),
        Case(name: "literal GitHub token", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - store: vault
                  key: ghp_Zk3hT9qLm2Xv8Rw4Yp6Bn1Cd5Fg7Hj0KsEu
            """), expected: [(13, 12, "literal-secret")]),
        Case(name: "literal secret in an annotation", source: """
            apiVersion: tokenctl/v1
            kind: Token
            metadata:
              name: a
              owner: team-payments
              annotations: {note: "pasted glpat-aB3dE5fG7hI9jK1lM3nO"}
            spec: {issuer: local, scopes: [orders:read], lifespan: 9d}
            """, expected: [(6, 23, "literal-secret")]),
        Case(name: "literal high-entropy string", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo: [{store: vault, key: "Q2hhbmdlTWUhX3k4ZlR3cUpOMnZM0x9aK"}]
            """), expected: [(11, 35, "literal-secret")]),
        Case(name: "random segment inside a path", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo: [{store: vault, key: "/etc/x/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7/app.env"}]
            """), expected: [(11, 35, "literal-secret")]),
        Case(name: "long paths, UUIDs and generated directory names are not secrets", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - {store: vault, key: "/var/lib/tokenctl/stores/payments-v2/orders-api.vault"}
                - {store: vault, key: "/tmp/tokenctl-e2e-1AA93C47-6CB5-4E66-9D36-26F8DF028FE2/x/app.env"}
                - {store: vault, key: "./state/8f3c2a1b-4d5e-4f60-9a7b-0c1d2e3f4a5b/keys"}
            """), expected: []),
        Case(name: "postgres tokens: role scopes, no clashing role names; secretFormat only for them", source: """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: db}
            spec: {type: postgres, postgres: {url: env:PG_ADMIN_URL}}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: b-c, namespace: a, owner: team-payments}
            spec: {issuer: db, scopes: ["role:reports_read", "orders:read"], lifespan: 9d}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: c, namespace: a-b, owner: team-payments}
            spec: {issuer: db, scopes: ["role:reports_read"], lifespan: 9d}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: d, owner: team-payments}
            spec: {issuer: local, scopes: [orders:read], secretFormat: password, lifespan: 9d}
            """, expected: [(9, 29, "scope-not-allowed"), (9, 50, "bad-value"), (14, 16, "duplicate-name"), (14, 29, "scope-not-allowed"),
                            (19, 16, "bad-value")]),
        Case(name: "PEM block", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - store: vault
                  key: |
                    -----BEGIN PRIVATE KEY-----
                    abc
            """), expected: [(13, 12, "literal-secret")]),
        Case(name: "bad duration", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90x
            """), expected: [(10, 13, "bad-duration")]),
        Case(name: "bad name", source: Fixture.token(name: "Orders_API", spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
            """), expected: [(4, 9, "bad-name")]),
        Case(name: "bad window", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              rotation: {window: "Mon-Fry 09:00-17:00 UTC"}
            """), expected: [(11, 22, "bad-window")]),
        Case(name: "literal secret instead of a reference", source: """
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: other}
            spec:
              type: encrypted-file
              encryptedFile: {path: x.vault, key: hunter2}
            """, expected: [(6, 39, "bad-reference")]),
        Case(name: "section that does not match the type", source: """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: pg}
            spec:
              type: builtin
              postgres: {url: env:PG_ADMIN_URL}
            """, expected: [(6, 3, "wrong-section")]),
        Case(name: "unknown kind", source: """
            apiVersion: tokenctl/v1
            kind: Tokn
            metadata: {name: a}
            spec: {}
            """, expected: [(2, 7, "unknown-kind")]),
        Case(name: "wrong apiVersion", source: """
            apiVersion: tokenctl/v2
            kind: Issuer
            metadata: {name: other}
            spec: {type: builtin}
            """, expected: [(1, 13, "api-version")]),
        Case(name: "bad choice", source: """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: other}
            spec: {type: builtin, ghosts: retier}
            """, expected: [(4, 31, "bad-value")]),
        Case(name: "duplicate scope", source: Fixture.token(spec: """
              issuer: local
              scopes: [orders:read, orders:read]
              lifespan: 90d
            """), expected: [(9, 25, "duplicate-scope")]),
        Case(name: "syntax error", source: "apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: a\n", expected: [(4, 1, "syntax")]),
        Case(name: "syntax error mid-file", source: "apiVersion: tokenctl/v1\nkind: Issuer\n  bad: indent\n", expected: [(2, 7, "unknown-kind"), (3, 6, "syntax")]),
        Case(name: "document that is not a mapping", source: "- a\n- b\n", expected: [(1, 1, "not-a-mapping")]),
        Case(name: "undefined alias", source: "apiVersion: *v\n", expected: [(1, 13, "unknown-anchor")]),
    ]

    @Test(arguments: cases)
    func rule(_ testCase: Case) {
        let result = Fixture.load(testCase.source)
        let expected = testCase.expected.map { Found(file: "t.yaml", line: $0.line, column: $0.column, code: $0.code) }
        #expect(result.found == expected, "\(result.diagnostics.map(\.message))")
    }

    @Test func messagesSayHowToFixTheProblem() {
        let result = Fixture.load(Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              lifespam: 90d
            """))
        #expect(result.messages("unknown-field") == [
            "unknown field 'lifespam' in Token spec (did you mean 'lifespan'?); known fields: issuer, scopes, lifespan, rotation, deliverTo, exception, secretFormat",
        ])
    }

    @Test func rendersFileLineColumnSourceAndCaret() {
        let dir = Fixture.directory()
        let path = dir + "/payments.yaml"
        let text = Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 90d\n  lifespam: 90d\n")
        _ = FileManagerShim.write(path, text)
        let result = ManifestLoader(registry: .standard).load(paths: [path], now: Fixture.now)
        var renderer = DiagnosticRenderer(colors: false)
        let output = renderer.render(result.diagnostics.filter { $0.code == "unknown-field" })
        #expect(output == """
            \(path):11:3: error: unknown field 'lifespam' in Token spec (did you mean 'lifespan'?); known fields: issuer, scopes, lifespan, rotation, deliverTo, exception, secretFormat
              lifespam: 90d
              ^

            """)
    }

    @Test func everyProblemOfARunIsReportedInOrder() {
        let result = Fixture.load([
            "b.yaml": Fixture.token(name: "b", spec: "  issuer: nope\n  scopes: [orders:read]\n  lifespan: 90d\n"),
            "a.yaml": Fixture.token(name: "a", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 9q\n  extra: 1\n"),
        ])
        #expect(result.found.map(\.description) == [
            "a.yaml:10:13 bad-duration", "a.yaml:11:3 unknown-field", "b.yaml:8:11 unknown-issuer",
        ])
    }

    @Test func kindMayFollowSpec() {
        let result = Fixture.load("""
            spec: {type: builtin, builtin: {prefix: acme}}
            metadata: {name: late}
            kind: Issuer
            apiVersion: tokenctl/v1
            """)
        #expect(result.diagnostics.isEmpty)
        #expect(result.manifests.issuers["late"]?.driver.settings(as: BuiltinIssuerSettings.self)?.prefix == "acme")
    }

    @Test func scalarsAreTypedByTheirField() {
        let result = Fixture.load([
            "t.yaml": """
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: "on", namespace: yes, owner: team-payments, labels: {enabled: on, count: 10}}
            spec: {issuer: local, scopes: [orders:read], lifespan: 9d}
            """,
        ])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.message))")
        let token = result.manifests.tokens.first
        #expect(token?.id == TokenID(namespace: "yes", name: "on"))
        #expect(token?.metadata.labels == ["enabled": "on", "count": "10"])
    }

    @Test func defaultsAreApplied() {
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 90d\n  deliverTo: [{store: vault}]\n"))
        let token = result.manifests.tokens.first
        #expect(token?.effectiveRotationEvery == TokenDuration(seconds: 60 * 86_400))
        #expect(token?.rotation.overlap == TokenDuration(seconds: 0))
        #expect(token?.deliverTo.first?.key == "payments/orders-api-ci")
        #expect(result.manifests.issuers["local"]?.ghosts == .report)
        #expect(result.manifests.issuers["local"]?.driver.settings(as: BuiltinIssuerSettings.self)?.prefix == "tkc")
        let other = Fixture.load("apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: x, owner: o}\nspec: {issuer: local, scopes: [a], lifespan: 1d}\n")
        #expect(other.manifests.tokens.first?.id.namespace == "default")
    }

    @Test func anchorsAndAliasesWork() {
        let result = Fixture.load("""
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: a, namespace: payments, owner: team-payments, labels: &labels {env: prod}}
            spec: {issuer: local, scopes: &scopes [orders:read, reports:read], lifespan: &life 90d}
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: b, namespace: payments, owner: team-payments}
            spec: {issuer: local, scopes: [orders:read], lifespan: 90d}
            """)
        #expect(result.diagnostics.isEmpty)
        #expect(result.manifests.tokens.first?.scopes == ["orders:read", "reports:read"])
        let same = Fixture.load("""
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: a, namespace: payments, owner: &owner team-payments, labels: &labels {env: prod}}
            spec: {issuer: local, scopes: &scopes [orders:read], lifespan: &life 90d, rotation: {every: *life}}
            """)
        #expect(same.diagnostics.isEmpty)
        #expect(same.manifests.tokens.first?.rotation.every == TokenDuration(seconds: 90 * 86_400))
    }
}

enum FileManagerShim {
    static func write(_ path: String, _ text: String) -> Bool {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}

import Foundation
