import Foundation
import TokenctlDrivers
import TokenctlModel

/// A `NAME=value` file (mode 0600) for tools that read environment files.
///
/// Keys become variable names: `payments/orders-api-ci` → `PAYMENTS_ORDERS_API_CI`.
package actor DotenvStore: ReadableSecretStore {
    /// The file.
    package let path: String

    /// Opens a dotenv store.
    package init(path: String) { self.path = path }

    /// The variable name for a key.
    package static func variableName(_ key: String) -> String {
        var name = String(key.uppercased().map { ($0.isLetter || $0.isNumber) && $0.isASCII ? $0 : "_" })
        if let first = name.first, first.isNumber { name = "_" + name }
        return name
    }

    package func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        var entries = try load()
        for key in removes { entries.removeValue(forKey: Self.variableName(key)) }
        var fingerprints: [String: String] = [:]
        for (key, secret) in puts {
            entries[Self.variableName(key)] = secret.withRevealed { $0 }
            fingerprints[key] = contentFingerprint(key: key, secret: secret)
        }
        let text = entries.keys.sorted().map { "\($0)=\(entries[$0] ?? "")\n" }.joined()
        try atomicWrite(Data(text.utf8), to: path)
        return fingerprints
    }

    package func fingerprint(key: String) async throws(StoreError) -> String? {
        try load()[Self.variableName(key)].map { contentFingerprint(key: key, secret: Secret($0)) }
    }

    package func read(key: String) async throws(StoreError) -> Secret? {
        try load()[Self.variableName(key)].map(Secret.init)
    }

    /// One read of the file for all the keys.
    package func read(keys: [String]) async throws(StoreError) -> [String: Secret] {
        let entries = try load()
        var secrets: [String: Secret] = [:]
        for key in keys { if let value = entries[Self.variableName(key)] { secrets[key] = Secret(value) } }
        return secrets
    }

    private func load() throws(StoreError) -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, detail: "cannot read it") }
        var entries: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            entries[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return entries
    }
}
