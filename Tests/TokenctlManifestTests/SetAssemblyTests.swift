import Testing
@testable import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// The set-level checks after the parallel decode: tokens joined in order, names unique across files and pieces,
/// references resolved for tokens that decoded and for tokens that did not.
@Suite struct SetAssemblyTests {
    /// `count` token documents named `svc-0`, `svc-1`, … in namespace `payments`.
    static func tokens(_ count: Int, issuer: String = "local") -> String {
        (0..<count).map { index in
            Fixture.token(name: "svc-\(index)", spec: "  issuer: \(issuer)\n  scopes: [orders:read]\n  lifespan: 90d\n")
        }.joined(separator: "\n---\n")
    }

    @Test func aFileCutIntoPiecesKeepsItsTokensInDocumentOrder() {
        // Over a megabyte, so the loader cuts it at document markers and decodes the pieces in parallel.
        let count = 8_000
        let result = Fixture.load(["big.yaml": Self.tokens(count)])
        #expect(!result.hasErrors, "\(result.found)")
        #expect(result.manifests.tokens.map(\.id.name) == (0..<count).map { "svc-\($0)" })
        // Positions in later pieces are still counted from the top of the file.
        let lines = result.manifests.tokens.map(\.metadata.location.line)
        #expect(lines.first == 4)
        #expect(lines == (0..<count).map { 4 + $0 * 12 })
    }

    @Test func aDuplicateInALaterPieceIsReportedThereCitingTheFirst() {
        let text = Self.tokens(8_000) + "\n---\n" + Fixture.token(name: "svc-7", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 90d\n")
        let result = Fixture.load(["big.yaml": text])
        #expect(result.found == [Found(file: "big.yaml", line: 96_004, column: 9, code: "duplicate-name")])
        #expect(result.messages("duplicate-name").first?.contains("big.yaml:88:9") == true)
        #expect(result.manifests.tokens.count == 8_000)
    }

    @Test func aDuplicateAcrossFilesIsReportedInTheLaterFile() {
        let token = Fixture.token(name: "shared", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 90d\n")
        let result = Fixture.load(["a.yaml": token, "b.yaml": token])
        #expect(result.found == [Found(file: "b.yaml", line: 4, column: 9, code: "duplicate-name")])
        #expect(result.messages("duplicate-name").first?.contains("a.yaml:4:9") == true)
        #expect(result.manifests.tokens.count == 1)
    }

    @Test func aTokenWithOtherErrorsStillHasItsReferencesChecked() {
        let text = Fixture.token(spec: """
              issuer: nowhere
              scopes: [orders:read]
              lifespan: 90 days
              deliverTo:
                - store: nothere
            """)
        let result = Fixture.load(text)
        #expect(result.found.map(\.code).sorted() == ["bad-duration", "unknown-issuer", "unknown-store"])
        #expect(result.messages("unknown-issuer").first?.contains("token 'payments/orders-api-ci' names issuer 'nowhere'") == true)
    }

    @Test func everyTokenNamingAMissingIssuerIsReported() {
        // The last issuer found is remembered; a miss must not be remembered as found.
        let missing = ["other-0", "other-1"].map { Fixture.token(name: $0, spec: "  issuer: gone\n  scopes: [orders:read]\n  lifespan: 90d\n") }
        let text = ([Self.tokens(2)] + missing).joined(separator: "\n---\n")
        let result = Fixture.load(text)
        #expect(result.found.map(\.code) == ["unknown-issuer", "unknown-issuer"])
        #expect(result.manifests.tokens.map(\.id.name) == ["svc-0", "svc-1"])
    }
}

/// Names are looked up by fingerprint; different names that share one must still be told apart.
@Suite struct NameFingerprintTests {
    static func declared(_ name: String, line: Int, fingerprint: Int) -> DeclaredName {
        var declared = DeclaredName(kind: "Token", namespace: "payments", name: name,
                                    location: SourceLocation(file: "names.yaml", line: line, column: 9))
        declared.fingerprint = fingerprint
        return declared
    }

    @Test func differentNamesWithTheSameFingerprintAreCheckedSeparately() {
        var result = FileDecodingResult()
        result.declared = [
            Self.declared("first", line: 1, fingerprint: 42), Self.declared("second", line: 5, fingerprint: 42),
            Self.declared("second", line: 9, fingerprint: 42), Self.declared("first", line: 13, fingerprint: 42),
            Self.declared("third", line: 17, fingerprint: 7),
        ]
        var results = [result]
        var set = ManifestSet()
        var diagnostics: [Diagnostic] = []
        SetValidator.assemble(&results, into: &set, registry: .standard, diagnostics: &diagnostics)
        let found = diagnostics.map { "\($0.location?.line ?? 0) \($0.code) \($0.message)" }.sorted()
        #expect(found.count == 2, "\(found)")
        #expect(found.first?.hasPrefix("13 duplicate-name Token 'first' in namespace 'payments' is already defined at names.yaml:1:9") == true)
        #expect(found.last?.hasPrefix("9 duplicate-name Token 'second' in namespace 'payments' is already defined at names.yaml:5:9") == true)
    }

    @Test func theEarliestDeclarationWinsWhateverOrderTheyAreSeenIn() {
        var later = FileDecodingResult()
        later.declared = [Self.declared("shared", line: 30, fingerprint: 1)]
        var earlier = FileDecodingResult()
        earlier.declared = [Self.declared("shared", line: 3, fingerprint: 1), Self.declared("shared", line: 60, fingerprint: 1)]
        var results = [later, earlier]
        var set = ManifestSet()
        var diagnostics: [Diagnostic] = []
        SetValidator.assemble(&results, into: &set, registry: .standard, diagnostics: &diagnostics)
        #expect(diagnostics.map { $0.location?.line ?? 0 }.sorted() == [30, 60])
        #expect(diagnostics.allSatisfy { $0.message.contains("names.yaml:3:9") })
    }
}
