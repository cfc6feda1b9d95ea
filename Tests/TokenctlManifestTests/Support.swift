import Foundation
import TestSupport
import Testing
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Writes manifests into a fresh temporary directory and loads them.
enum Fixture {
    /// An Issuer `local`, a Store `vault` and a Policy `default` that token cases refer to.
    static let base = """
        apiVersion: tokenctl/v1
        kind: Issuer
        metadata: {name: local}
        spec: {type: builtin}
        ---
        apiVersion: tokenctl/v1
        kind: Store
        metadata: {name: vault}
        spec:
          type: encrypted-file
          encryptedFile: {path: secrets.vault, key: env:TOKENCTL_MASTER_KEY}
        ---
        apiVersion: tokenctl/v1
        kind: Policy
        metadata: {name: default}
        spec:
          maxLifespan: 365d
          maxRotationEvery: 90d
          permanentTokens: requireException
          scopes:
            - owners: [team-payments]
              allow: ["orders:*", reports:read]

        """

    static let now = Timestamp(secondsSinceEpoch: 1_795_910_400)  // 2026-11-29T00:00:00Z

    static func directory() -> String {
        Scratch.directory("tokenctl-tests")
    }

    /// Loads `files` (name → text), plus `base.yaml` unless `withBase` is false.
    static func load(_ files: [String: String], withBase: Bool = true, now: Timestamp = Fixture.now) -> ManifestLoadResult {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var all = files
        if withBase { all["base.yaml"] = base }
        for (name, text) in all {
            let path = dir + "/" + name
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        }
        return ManifestLoader(registry: .standard).load(paths: [dir], now: now)
    }

    /// Loads one token file `t.yaml` with the base documents.
    static func load(_ text: String, now: Timestamp = Fixture.now) -> ManifestLoadResult {
        load(["t.yaml": text], now: now)
    }

    /// A token document whose spec lines follow `spec:` (each indented by two spaces by the caller).
    static func token(name: String = "orders-api-ci", owner: String = "team-payments", spec: String) -> String {
        """
        apiVersion: tokenctl/v1
        kind: Token
        metadata:
          name: \(name)
          namespace: payments
          owner: \(owner)
        spec:
        \(spec)
        """
    }
}

/// A diagnostic reduced to what tests compare: file name, line, column, code.
struct Found: Equatable, CustomStringConvertible {
    var file: String
    var line: Int
    var column: Int
    var code: String
    var description: String { "\(file):\(line):\(column) \(code)" }
}

extension ManifestLoadResult {
    var found: [Found] {
        diagnostics.map {
            Found(file: (($0.location?.file ?? "-") as NSString).lastPathComponent, line: $0.location?.line ?? 0,
                  column: $0.location?.column ?? 0, code: $0.code)
        }
    }

    func messages(_ code: String) -> [String] { diagnostics.filter { $0.code == code }.map(\.message) }
}
