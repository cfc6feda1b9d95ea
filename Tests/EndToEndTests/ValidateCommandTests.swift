import Foundation
import Testing

/// `tokenctl validate` as a user runs it: exit codes, diagnostics, JSON, and nothing written.
@Suite struct ValidateCommandTests {
    static let base = """
        apiVersion: tokenctl/v1
        kind: Issuer
        metadata: {name: local}
        spec: {type: builtin}
        ---
        apiVersion: tokenctl/v1
        kind: Policy
        metadata: {name: default}
        spec:
          maxLifespan: 365d
          scopes: [{owners: [team-payments], allow: ["orders:*"]}]

        """

    static func token(_ spec: String) -> String {
        "apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: api, namespace: payments, owner: team-payments}\nspec:\n\(spec)"
    }

    @Test func quickstartValidates() throws {
        let outcome = try BinaryRunner.run(["validate", "-f", BinaryRunner.packageRoot.appendingPathComponent("Examples/quickstart").path])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.hasPrefix("Valid: 3 tokens, 1 issuer, 1 store, 1 policy (6 documents in 1 file)"), "no \"1 issuers\": \(outcome.stdout)")
    }

    @Test func errorsExitOneWithEveryDiagnostic() throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        BinaryRunner.write(Self.base, to: dir + "/base.yaml")
        BinaryRunner.write(Self.token("  issuer: local\n  scopes: [orders:read]\n  lifespam: 90d\n"), to: dir + "/payments.yaml")
        BinaryRunner.write(Self.token("  issuer: lcoal\n  scopes: [orders:read]\n  lifespan: 90d\n").replacingOccurrences(of: "name: api", with: "name: other"),
                           to: dir + "/more/other.yaml")
        let before = try FileManager.default.subpathsOfDirectory(atPath: dir).sorted()
        let outcome = try BinaryRunner.run(["validate", "-f", dir])
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("""
            \(dir)/more/other.yaml:5:11: error: token 'payments/other' names issuer 'lcoal', which is not defined (did you mean 'local'?); defined issuers: local
              issuer: lcoal
                      ^
            """))
        #expect(outcome.stderr.contains("\(dir)/payments.yaml:7:3: error: unknown field 'lifespam' in Token spec (did you mean 'lifespan'?)"))
        #expect(outcome.stderr.contains("\(dir)/payments.yaml:5:3: error: missing required field 'lifespan' in Token spec"))
        #expect(outcome.stdout.contains("Invalid: 3 errors, 0 policy violations"))
        #expect(try FileManager.default.subpathsOfDirectory(atPath: dir).sorted() == before, "validate wrote something")
    }

    @Test func policyViolationsOnlyExitThree() throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        BinaryRunner.write(Self.base + "---\n" + Self.token("  issuer: local\n  scopes: [orders:read]\n  lifespan: 400d\n  rotation: {every: 30d}\n"),
                           to: dir + "/all.yaml")
        let outcome = try BinaryRunner.run(["validate", "-f", dir + "/all.yaml"])
        #expect(outcome.status == 3, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("all.yaml:19:13: error: policy violation: token 'payments/api' has lifespan 400d, longer than the 365d"))
    }

    @Test func atJudgesExceptionExpiry() throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let permanent = Self.token("""
              issuer: local
              scopes: [orders:read]
              lifespan: never
              exception: {reason: legacy partner, approvedBy: security-team, ticket: SEC-42, expires: 2027-03-01}

            """)
        BinaryRunner.write(Self.base + "---\n" + permanent, to: dir + "/all.yaml")
        #expect(try BinaryRunner.run(["validate", "-f", dir, "--at", "2027-01-01"]).status == 0)
        let late = try BinaryRunner.run(["validate", "-f", dir, "--at", "2027-03-02T00:00:00Z"])
        #expect(late.status == 3)
        #expect(late.stderr.contains("expired on 2027-03-01 (ticket SEC-42)"))
        #expect(try BinaryRunner.run(["validate", "-f", dir, "--at", "tomorrow"]).status == 1)
    }

    @Test func jsonOutput() throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        BinaryRunner.write(Self.base + "---\n" + Self.token("  issuer: local\n  scopes: [orders:read]\n  lifespan: 90x\n"), to: dir + "/all.yaml")
        let outcome = try BinaryRunner.run(["validate", "-f", dir, "--json"])
        #expect(outcome.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["formatVersion"] as? Int == 1)
        #expect(object["valid"] as? Bool == false)
        let diagnostics = try #require(object["diagnostics"] as? [[String: Any]])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?["code"] as? String == "bad-duration")
        #expect(diagnostics.first?["line"] as? Int == 19)
        #expect(diagnostics.first?["column"] as? Int == 13)
        #expect(diagnostics.first?["severity"] as? String == "error")
        // Paths as written, not JSON-escaped ("\/tmp\/…"), so that grep and jq users find them.
        #expect(outcome.stdout.contains("\"file\" : \"\(dir)/all.yaml\"") && !outcome.stdout.contains("\\/"), "\(outcome.stdout)")
    }

    @Test func usageErrorsExitOne() throws {
        let outcome = try BinaryRunner.run(["validate"])
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("-f PATH"))
        #expect(try BinaryRunner.run(["validate", "-f", "/nonexistent"]).status == 1)
        #expect(try BinaryRunner.run(["frobnicate"]).status == 1)
    }
}
