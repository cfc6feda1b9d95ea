import Foundation
import Testing
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Files that are not what they seem: links out of the manifest directory, special files, byte-order marks, tags,
/// and text that must not be echoed.
@Suite struct FileSafetyTests {
    /// A line that a manifest repository must never make tokenctl print: a database URL with its password.
    static let outsideSecret = "DATABASE_URL=postgres://app:hunter2-canary@db.internal:5432/prod"

    /// A directory with base.yaml, plus `outside/app.env` beside it (not under it) holding the secret line.
    struct Layout {
        let top = Fixture.directory()
        var manifests: String { top + "/manifests" }
        var outsideFile: String { top + "/outside/app.env" }

        init() {
            try? FileManager.default.createDirectory(atPath: top + "/manifests", withIntermediateDirectories: true)
            try? FileManager.default.createDirectory(atPath: top + "/outside", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: top + "/manifests/base.yaml", contents: Data(Fixture.base.utf8))
            FileManager.default.createFile(atPath: top + "/outside/app.env", contents: Data((FileSafetyTests.outsideSecret + "\n").utf8))
        }

        func remove() { try? FileManager.default.removeItem(atPath: top) }

        func load(_ paths: [String]) -> ManifestLoadResult { ManifestLoader(registry: .standard).load(paths: paths, now: Fixture.now) }
    }

    /// Every rendering of a result: the human diagnostics (source lines included) and the JSON.
    static func everyOutput(_ result: ManifestLoadResult) -> String {
        var renderer = DiagnosticRenderer(colors: false)
        return renderer.render(result.diagnostics) + DiagnosticRenderer.json(result)
    }

    @Test func aLinkOutOfTheDirectoryIsRefusedAndItsTargetNeverRead() throws {
        let layout = Layout()
        defer { layout.remove() }
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/innocent.yaml", withDestinationPath: layout.outsideFile)
        let result = layout.load([layout.manifests])
        let refusal = try #require(result.diagnostics.first { $0.code == "symlink-outside-root" }, "\(result.diagnostics)")
        #expect(refusal.severity == .error && refusal.message.contains("innocent.yaml"))
        #expect(!result.files.contains { $0.hasSuffix("innocent.yaml") })
        let output = Self.everyOutput(result)
        #expect(!output.contains("hunter2-canary") && !output.contains("DATABASE_URL"), "\(output)")
    }

    @Test func aLinkNamedWithFOutOfItsDirectoryIsRefused() throws {
        let layout = Layout()
        defer { layout.remove() }
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/named.yaml", withDestinationPath: layout.outsideFile)
        let result = layout.load([layout.manifests + "/named.yaml"])
        #expect(result.diagnostics.map(\.code) == ["symlink-outside-root"])
        #expect(!Self.everyOutput(result).contains("hunter2-canary"))
    }

    @Test func aLinkToADirectoryOutsideIsNotFollowed() throws {
        let layout = Layout()
        defer { layout.remove() }
        FileManager.default.createFile(atPath: layout.top + "/outside/more.yaml", contents: Data((Self.outsideSecret + "\n").utf8))
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/elsewhere", withDestinationPath: layout.top + "/outside")
        let result = layout.load([layout.manifests])
        #expect(result.diagnostics.map(\.code) == ["symlink-outside-root"])
        #expect(!result.files.contains { $0.contains("more.yaml") })
        #expect(!Self.everyOutput(result).contains("hunter2-canary"))
    }

    @Test func linksInsideTheDirectoryAreFollowed() throws {
        let layout = Layout()
        defer { layout.remove() }
        try FileManager.default.createDirectory(atPath: layout.manifests + "/shared", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: layout.manifests + "/shared/token.txt",
                                       contents: Data(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n").utf8))
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/token.yaml", withDestinationPath: "shared/token.txt")
        let result = layout.load([layout.manifests])
        #expect(result.diagnostics.filter { $0.severity == .error }.isEmpty, "\(result.diagnostics)")
        #expect(result.manifests.tokens.count == 1)
    }

    @Test func aLinkIntoAHiddenDirectoryIsRefused() throws {
        let layout = Layout()
        defer { layout.remove() }
        try FileManager.default.createDirectory(atPath: layout.manifests + "/.tokenctl", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: layout.manifests + "/.tokenctl/master.key", contents: Data((Self.outsideSecret + "\n").utf8))
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/key.yaml", withDestinationPath: ".tokenctl/master.key")
        let result = layout.load([layout.manifests])
        #expect(result.diagnostics.map(\.code) == ["symlink-outside-root"])
        #expect(!Self.everyOutput(result).contains("hunter2-canary"))
    }

    @Test func aNamedDirectoryLinkWithATrailingSlashIsStillALink() throws {
        let layout = Layout()
        defer { layout.remove() }
        FileManager.default.createFile(atPath: layout.top + "/outside/more.yaml", contents: Data((Self.outsideSecret + "\n").utf8))
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/linked", withDestinationPath: layout.top + "/outside")
        for path in [layout.manifests + "/linked", layout.manifests + "/linked/", layout.manifests + "/linked//"] {
            let result = layout.load([path])
            #expect(result.diagnostics.map(\.code) == ["symlink-outside-root"], "\(path): \(result.diagnostics)")
            #expect(!Self.everyOutput(result).contains("hunter2-canary"))
        }
    }

    @Test func aFIFOIsRefusedWithoutWaiting() throws {
        let layout = Layout()
        defer { layout.remove() }
        #expect(mkfifo(layout.manifests + "/pipe.yaml", 0o600) == 0)
        let clock = ContinuousClock()
        var result: ManifestLoadResult?
        let elapsed = clock.measure { result = layout.load([layout.manifests]) }
        let refusal = try #require(result?.diagnostics.first { $0.code == "not-a-regular-file" }, "\(String(describing: result?.diagnostics))")
        #expect(refusal.message.contains("FIFO"))
        #expect(elapsed < .seconds(2), "took \(elapsed)")
    }

    @Test func aDeviceIsRefusedWithoutReadingIt() throws {
        let clock = ContinuousClock()
        for device in ["/dev/zero", "/dev/urandom"] {
            var result: ManifestLoadResult?
            let elapsed = clock.measure { result = ManifestLoader(registry: .standard).load(paths: [device], now: Fixture.now) }
            #expect(result?.diagnostics.map(\.code) == ["not-a-regular-file"], "\(String(describing: result?.diagnostics))")
            #expect(elapsed < .seconds(1), "\(device) took \(elapsed)")
        }
        let layout = Layout()
        defer { layout.remove() }
        try FileManager.default.createSymbolicLink(atPath: layout.manifests + "/zero.yaml", withDestinationPath: "/dev/zero")
        #expect(layout.load([layout.manifests]).diagnostics.map(\.code) == ["symlink-outside-root"])
    }

    @Test func aByteOrderMarkIsAccepted() {
        let result = Fixture.load(["t.yaml": "\u{FEFF}" + Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n")])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(result.manifests.tokens.count == 1)
    }

    @Test(arguments: ["!!python/object:os.system", "!!binary", "!custom", "!!str", "!<tag:example.com,2026:x>"])
    func yamlTagsAreRefused(tag: String) throws {
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: \(tag) 30d\n"))
        let refusal = try #require(result.diagnostics.first { $0.code == "yaml-tag" }, "\(result.diagnostics)")
        #expect(refusal.location?.line == 10)
        #expect(refusal.message.contains("remove the tag"))
        let onMapping = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  rotation: !!map {every: 10d}\n  lifespan: 30d\n"))
        #expect(onMapping.diagnostics.contains { $0.code == "yaml-tag" })
    }

    @Test func aHugeUnknownKeyIsNotEchoedWhole() throws {
        let key = String(repeating: "k", count: 900_000)
        let result = Fixture.load(Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n  ? \(key)\n  : 1\n"))
        let unknown = try #require(result.diagnostics.first { $0.code == "unknown-field" })
        #expect(unknown.message.utf8.count < 1_000, "\(unknown.message.utf8.count) bytes")
        #expect(unknown.message.contains("900000 bytes") && unknown.message.contains("did you mean") == false)
        var renderer = DiagnosticRenderer(colors: false)
        #expect(renderer.render(result.diagnostics).utf8.count < 4_000)
    }

    @Test func aLineThatLooksSecretIsNeverEchoed() throws {
        let leaked = "ghp_" + String(repeating: "aB3dE5fG7h", count: 4)
        let layout = Layout()
        defer { layout.remove() }
        let files = [
            "env.yaml": Self.outsideSecret + "\n",
            "t.yaml": Fixture.token(spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n  note: \(leaked)\n"),
            "p.yaml": Fixture.token(name: "other", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n  password: hunter3-canary\n"),
            "plain.yaml": Fixture.token(name: "third", spec: "  issuer: local\n  scopes: [orders:read]\n  lifespan: 30d\n  lifespam: 3d\n"),
        ]
        for (name, text) in files { FileManager.default.createFile(atPath: layout.manifests + "/" + name, contents: Data(text.utf8)) }
        let result = layout.load([layout.manifests])
        #expect(result.hasErrors)
        let output = Self.everyOutput(result)
        #expect(output.contains("  lifespam: 3d\n  ^"), "a harmless line is still shown with its caret: \(output)")
        for canary in ["hunter2-canary", leaked, "hunter3-canary"] { #expect(!output.contains(canary), "\(canary) in \(output)") }
        #expect(output.contains("source line not shown"))
    }

    @Test(arguments: [
        ("DATABASE_URL=postgres://app:pw@db/prod", true), ("export API_TOKEN=abc123", true), ("  password: hunter2", true),
        ("  \"db_password\": hunter2", true), ("{password: hunter2}", true), ("  - {'api_key': x1}", true),
        ("  secretFormat: scram-sha-256", false), ("  scopes: [secrets:read, tokens:write]", false), ("kind: Token", false),
        ("    encryptedFile: {path: secrets.vault, key: env:TOKENCTL_MASTER_KEY}", false), ("  url: https://grafana.example.com/d/abc", false),
    ])
    func lineFindings(line: String, flagged: Bool) {
        #expect((SecretScanner.lineFinding(line) != nil) == flagged, "\(line)")
    }
}

/// Two deliveries that land in one entry of a store are refused, with both places named.
@Suite struct StoreSlotTests {
    static let dotenvStore = """
        ---
        apiVersion: tokenctl/v1
        kind: Store
        metadata: {name: envfile}
        spec: {type: dotenv, dotenv: {path: app.env}}

        """

    static func token(_ name: String, namespace: String = "payments", deliverTo: String) -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: \(namespace), owner: team-payments}
        spec: {issuer: local, scopes: [orders:read], lifespan: 30d, deliverTo: [\(deliverTo)]}

        """
    }

    @Test func theSameExplicitKeyIsRefused() throws {
        let result = Fixture.load(["t.yaml": Self.token("a", deliverTo: "{store: vault, key: shared}") + Self.token("b", deliverTo: "{store: vault, key: shared}")])
        let conflict = try #require(result.diagnostics.first { $0.code == "store-slot-conflict" }, "\(result.diagnostics)")
        #expect(result.diagnostics.filter { $0.code == "store-slot-conflict" }.count == 1)
        #expect(conflict.location?.line == 10)
        #expect(conflict.message.contains("payments/a") && conflict.message.contains("t.yaml:5:"), "\(conflict.message)")
    }

    @Test func aDefaultKeyEqualToAnotherTokensExplicitKeyIsRefused() throws {
        let result = Fixture.load(["t.yaml": Self.token("a", deliverTo: "{store: vault}") + Self.token("b", deliverTo: "{store: vault, key: payments/a}")])
        let conflict = try #require(result.diagnostics.first { $0.code == "store-slot-conflict" }, "\(result.diagnostics)")
        #expect(conflict.message.contains("payments/b") && conflict.message.contains("payments/a"))
    }

    @Test func dotenvNamesThatCollapseAreRefused() throws {
        let result = Fixture.load(["t.yaml": Self.dotenvStore + Self.token("a", deliverTo: "{store: envfile, key: apps/web-api}")
                                   + Self.token("b", deliverTo: "{store: envfile, key: apps-web/api}")])
        let conflict = try #require(result.diagnostics.first { $0.code == "store-slot-conflict" }, "\(result.diagnostics)")
        #expect(conflict.message.contains("APPS_WEB_API"), "\(conflict.message)")
    }

    @Test func distinctKeysAndStoresPass() {
        let result = Fixture.load(["t.yaml": Self.dotenvStore
            + Self.token("a", deliverTo: "{store: vault}, {store: envfile}")
            + Self.token("b", deliverTo: "{store: vault, key: apps/web-api}, {store: envfile, key: apps/web-api}")
            + Self.token("c", deliverTo: "{store: vault, key: apps-web/api}")])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
    }
}
