import Foundation
import Testing
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Hostile input is refused with a clear error, quickly. (Peak memory of each case is checked
/// against the built binary in EndToEndTests.)
@Suite struct HostileInputTests {
    static func refuse(_ name: String, _ bytes: [UInt8], code: String, line: Int? = nil) throws {
        let dir = Fixture.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let clock = ContinuousClock()
        var result: ManifestLoadResult?
        let elapsed = clock.measure { result = ManifestLoader(registry: .standard).load(paths: [path], now: Fixture.now) }
        let diagnostics = try #require(result).diagnostics
        // Problems found before the input turned hostile are reported too, but the refusal is there and the list stays short.
        let refusal = try #require(diagnostics.first { $0.code == code }, "\(diagnostics.map(\.message))")
        #expect(diagnostics.count < 50)
        #expect(refusal.severity == .error)
        #expect(refusal.message.count > 30)
        if let line { #expect(refusal.location?.line == line) }
        #expect(elapsed < .seconds(2), "took \(elapsed)")
    }

    static func billionLaughs() -> [UInt8] {
        var text = "apiVersion: tokenctl/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  scopes:\n"
        text += "    - owners: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n      allow: [x]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            text += "    - owners: &a\(level) [\(refs)]\n      allow: [x]\n"
        }
        return Array(text.utf8)
    }

    @Test func aliasExpansionBomb() throws {
        try Self.refuse("bomb.yaml", Self.billionLaughs(), code: "alias-expansion")
    }

    @Test func deepNesting() throws {
        let text = "apiVersion: tokenctl/v1\nkind: Token\nmetadata: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        try Self.refuse("deep.yaml", Array(text.utf8), code: "too-deep", line: 3)
    }

    @Test func deepBlockNesting() throws {
        var text = "apiVersion: tokenctl/v1\nkind: Token\nmetadata:\n"
        for depth in 1...10_000 { text += String(repeating: " ", count: depth) + "k:\n" }
        try Self.refuse("deep-block.yaml", Array(text.utf8), code: "too-deep")
    }

    @Test func hugeScalar() throws {
        var bytes = Array("apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: ".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "a"), count: 50 << 20)
        bytes += Array("}\n".utf8)
        try Self.refuse("huge.yaml", bytes, code: "value-too-large")
    }

    @Test func invalidUTF8() throws {
        let bytes = Array("apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: ".utf8) + [0xC3, 0x28, 0xFF] + Array("}\n".utf8)
        try Self.refuse("latin1.yaml", bytes, code: "encoding", line: 3)
    }

    @Test func binaryFile() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0]
        try Self.refuse("blob.yaml", bytes, code: "binary-file", line: 1)
    }

    @Test func emptyFile() throws {
        try Self.refuse("empty.yaml", [], code: "empty-file", line: 1)
    }

    @Test func onlyComments() throws {
        try Self.refuse("comments.yaml", Array("# nothing here\n# yet\n---\n".utf8), code: "empty-file", line: 1)
    }

    @Test func manyKeysStayLinear() throws {
        var text = "apiVersion: tokenctl/v1\nkind: Policy\nmetadata:\n  name: a\n  labels:\n"
        for index in 0..<50_000 { text += "    k\(index): v\n" }
        text += "    k7: dup\nspec: {maxLifespan: 90d}\n"
        try Self.refuse("keys.yaml", Array(text.utf8), code: "duplicate-key", line: 50_006)
    }

    @Test func missingPathsAreReported() {
        let result = ManifestLoader(registry: .standard).load(paths: ["/nonexistent/manifests"], now: Fixture.now)
        #expect(result.found.map(\.code) == ["missing-path"])
        #expect(result.diagnostics.first?.message.contains("/nonexistent/manifests") == true)
    }
}

/// Many diagnostics cost linear time, and what is shown of them is capped.
@Suite struct DiagnosticVolumeTests {
    @Test func manyDiagnosticsRenderInLinearTimeAndAreCapped() throws {
        let dir = Fixture.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/empty.yaml"
        FileManager.default.createFile(atPath: path, contents: Data(String(repeating: "--- {}\n", count: 20_000).utf8))
        let clock = ContinuousClock()
        var rendered = ""
        var json = ""
        var result: ManifestLoadResult?
        let elapsed = clock.measure {
            result = ManifestLoader(registry: .standard).load(paths: [path], now: Fixture.now)
            var renderer = DiagnosticRenderer(colors: false)
            rendered = renderer.render(result?.diagnostics ?? [])
            json = DiagnosticRenderer.json(try! #require(result))
        }
        let diagnostics = try #require(result).diagnostics
        #expect(diagnostics.count == 40_000, "every problem is still counted")
        #expect(elapsed < .seconds(3), "took \(elapsed)")
        let headings = rendered.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(headings.count == DiagnosticRenderer.maxShown)
        #expect(rendered.contains("and 39000 more diagnostics not shown"))
        #expect(json.contains("\"omittedDiagnostics\" : 39000") && json.utf8.count < 400_000, "\(json.utf8.count) bytes of JSON")
    }
}
