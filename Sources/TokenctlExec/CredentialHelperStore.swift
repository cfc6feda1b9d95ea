import Foundation
import TokenctlDrivers
import TokenctlModel

/// A store kept by a Docker credential helper (`docker-credential-pass`, `-secretservice`, `-osxkeychain`, …), run as
/// `PROGRAM store|get|erase|list` with the protocol's JSON on stdin: any existing helper is a tokenctl store.
///
/// A delivery key is the helper's `ServerURL`, and `Username` is `tokenctl`.
///
/// ```swift
/// let store = CredentialHelperStore(name: "ci", settings: ExecSettings(command: ["docker-credential-pass"]))
/// _ = try await store.write(puts: ["payments/api": secret], removes: [])
/// ```
package struct CredentialHelperStore: SecretStore {
    /// The store's name in the manifests.
    package let name: String
    let settings: ExecSettings
    let environment: [String: String]

    /// Creates the driver.
    package init(name: String, settings: ExecSettings, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.name = name
        self.settings = settings
        self.environment = environment
    }

    /// The helper's `Username` for every key tokenctl writes.
    static let username = "tokenctl"

    private struct Credentials: Codable {
        var ServerURL: String?
        var Username: String
        var Secret: String
    }

    package func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        var fingerprints: [String: String] = [:]
        for (key, secret) in puts.sorted(by: { $0.key < $1.key }) {
            let payload = secret.withRevealed { text in
                try? JSONEncoder().encode(Credentials(ServerURL: key, Username: Self.username, Secret: text))
            }
            guard let payload else { throw failure("could not encode the credentials for '\(key)'") }
            let output = try await run("store", input: Array(payload))
            guard output.status == 0 else {
                throw failure("store of '\(key)' failed", output, hiding: secret.withRevealed { [$0] })
            }
            fingerprints[key] = contentFingerprint(key: key, secret: secret)
        }
        for key in removes {
            let output = try await run("erase", input: Array(key.utf8))
            // Erasing what is not there is fine: helpers say "credentials not found".
            guard output.status == 0 || Self.saysNotFound(output) else { throw failure("erase of '\(key)' failed", output) }
        }
        return fingerprints
    }

    /// The keys the helper holds that tokenctl wrote (its `list`, filtered by the `tokenctl` username).
    package func keys() async throws(StoreError) -> [String] {
        let output = try await run("list", input: [])
        guard output.status == 0, let listed = try? JSONDecoder().decode([String: String].self, from: Data(output.stdout)) else {
            throw failure("list failed or did not answer a JSON object of ServerURL to Username", output)
        }
        return listed.filter { $0.value == Self.username }.map(\.key).sorted()
    }

    func run(_ action: String, input: [UInt8]) async throws(StoreError) -> PluginProcess.Output {
        var process = settings.process(context: environment)
        process.command.append(action)
        do {
            return try await process.run(input: input)
        } catch {
            throw StoreError.io(path: "exec store '\(name)'", detail: "\(action): \(error)")
        }
    }

    /// The helper protocol's answer for an absent key (`credentials not found in native keychain`), not any failure
    /// that happens to say "not found" (a missing `pass`, a missing GPG key).
    static func saysNotFound(_ output: PluginProcess.Output) -> Bool {
        String(decoding: output.stdout + output.stderr, as: UTF8.self).lowercased().contains("credentials not found")
    }

    /// A failure naming the store; what the helper printed is masked, and a `get`'s stdout (which may hold the secret) is
    /// never shown.
    func failure(_ what: String, _ output: PluginProcess.Output? = nil, showStdout: Bool = true, hiding known: [String] = []) -> StoreError {
        var detail = what
        if let output {
            let shown = output.stderr.isEmpty && showStdout ? output.stdout : output.stderr
            let said = SecretMask.excerpt(shown, maxBytes: 2048, maxLines: 10, hiding: known)
            detail += " (exit status \(output.status)\(said.isEmpty ? "" : ": " + said))"
        }
        return StoreError.io(path: "exec store '\(name)'", detail: detail)
    }
}

/// A credential helper that answers `get`: its secrets can be read back.
package struct ReadableCredentialHelperStore: ReadableSecretStore {
    let helper: CredentialHelperStore

    /// Wraps a helper that answers `get`.
    package init(_ helper: CredentialHelperStore) { self.helper = helper }

    package func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        try await helper.write(puts: puts, removes: removes)
    }

    package func read(key: String) async throws(StoreError) -> Secret? {
        let output = try await helper.run("get", input: Array(key.utf8))
        if output.status != 0 && CredentialHelperStore.saysNotFound(output) { return nil }
        guard output.status == 0 else { throw helper.failure("get of '\(key)' failed", output, showStdout: false) }
        struct Answer: Decodable { var Username: String?; var Secret: String }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(output.stdout)) else {
            throw helper.failure("get of '\(key)' did not answer {\"Username\", \"Secret\"}")
        }
        // Some helpers (docker-credential-pass 0.6) answer a missing key with an empty secret and status 0.
        return answer.Secret.isEmpty ? nil : Secret(answer.Secret)
    }

    package func fingerprint(key: String) async throws(StoreError) -> String? {
        try await read(key: key).map { contentFingerprint(key: key, secret: $0) }
    }
}
