import Foundation
import TokenctlDrivers
import TokenctlManifest
import TokenctlModel

/// An issuer whose credentials a plugin program mints, speaking `tokenctl.io/plugin/v1`: one JSON request on stdin,
/// one JSON response on stdout, per run.
///
/// ```swift
/// let issuer = ExecIssuer(name: "cache", settings: settings, secrets: ["adminPassword": password])
/// let results = await issuer.issueEach(requests, now: now)   // one plugin run per batch
/// ```
package struct ExecIssuer: CredentialIssuer {
    /// The issuer's name in the manifests.
    package let name: String
    let settings: ExecSettings
    /// `exec.secrets`, resolved.
    let secrets: [String: String]
    let environment: [String: String]

    /// Creates the driver; `secrets` are the resolved `exec.secrets`.
    package init(name: String, settings: ExecSettings, secrets: [String: String],
                 environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.name = name
        self.settings = settings
        self.secrets = secrets
        self.environment = environment
    }

    var offered: Set<String> { Set(settings.handshake?.operations ?? []) }

    // MARK: Operations

    package func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential] {
        let results = await issueEach(requests, now: now)
        // All or none: what this call created goes again when one request failed.
        if let failure = results.lazy.compactMap({ result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }).first {
            let created = results.compactMap { try? $0.get() }.filter { $0.secret != nil }.map(\.credentialID)
            do {
                try await revoke(created, now: now)
            } catch {
                throw PluginFailure(issuer: name, "failed one request (\(failure)), and revoking the \(created.count) issued with it "
                                    + "failed too (\(error)); tokenctl plan --refresh shows them as ghosts")
            }
            throw failure
        }
        return results.compactMap { try? $0.get() }
    }

    package func issueEach(_ requests: [IssueRequest], now: Timestamp) async -> [Result<IssuedCredential, any Error>] {
        let batch = max(1, settings.handshake?.batch ?? 1)
        var results: [Result<IssuedCredential, any Error>] = []
        results.reserveCapacity(requests.count)
        for start in stride(from: 0, to: requests.count, by: batch) {
            let chunk = Array(requests[start..<min(start + batch, requests.count)])
            results += await issueRun(chunk)
        }
        return results
    }

    private func issueRun(_ chunk: [IssueRequest]) async -> [Result<IssuedCredential, any Error>] {
        let items = chunk.map { request in
            PluginProtocol.IssueItem(token: request.subject, version: request.version, owner: request.owner, scopes: request.scopes,
                                     expiresAt: request.expiresAt, idempotencyKey: request.idempotencyKey)
        }
        do {
            let response = try await exchange(request(.issue) { $0.requests = items }, as: PluginProtocol.IssueResponse.self)
            guard response.results.count == chunk.count else {
                throw PluginFailure(issuer: name, "answered issue with \(response.results.count) results for \(chunk.count) requests")
            }
            // Any secret of the response may turn up in another entry's text; none is ever shown.
            let issued = response.results.compactMap(\.secret)
            return response.results.map { result in
                if let error = result.error {
                    return .failure(PluginFailure(issuer: name, "refused the request: \(mask(error, also: issued))"))
                }
                // Against its own secret only: checking every entry against every secret of a batch is quadratic.
                let holdsSecret = { (text: String) in result.secret.map { !$0.isEmpty && text.contains($0) } ?? false }
                guard let id = result.credentialID, !id.isEmpty, !holdsSecret(id) else {
                    return .failure(PluginFailure(issuer: name, "answered issue without a credentialID, or with one holding the secret"))
                }
                let secret = result.secret.map(Secret.init)
                let hint = result.hint.flatMap { holdsSecret($0) ? nil : $0 } ?? id
                return .success(IssuedCredential(credentialID: id, secret: secret,
                                                 fingerprint: result.secret.map(Digest.sha256Hex) ?? "", hint: hint))
            }
        } catch {
            return chunk.map { _ in .failure(error) }
        }
    }

    package func revoke(_ credentialIDs: [String], now: Timestamp) async throws {
        guard !credentialIDs.isEmpty else { return }
        _ = try await exchange(request(.revoke) { $0.credentialIDs = credentialIDs }, as: PluginProtocol.Acknowledgement.self)
    }

    package func update(credentialID: String, scopes: [String]) async throws {
        guard offered.contains("update") else {
            throw PluginFailure(issuer: name, "does not offer update; tokenctl rotates its tokens when their scopes change")
        }
        _ = try await exchange(request(.update) { $0.credentialID = credentialID; $0.scopes = scopes }, as: PluginProtocol.Acknowledgement.self)
    }

    package func list() async throws -> [ObservedCredential] {
        guard offered.contains("list") else { return [] }
        let response = try await exchange(request(.list), as: PluginProtocol.ListResponse.self)
        return response.credentials.map { listed in
            ObservedCredential(issuer: name, credentialID: listed.credentialID, hint: listed.hint ?? listed.credentialID,
                               expiresAt: listed.expiresAt, revoked: listed.revoked ?? false,
                               unmarked: listed.marked == false ? true : nil)
        }
    }

    package func credential(forIdempotencyKey key: String) async throws -> String? {
        guard offered.contains("lookup") else { return nil }
        return try await exchange(request(.lookup) { $0.idempotencyKey = key }, as: PluginProtocol.LookupResponse.self).credentialID
    }

    /// Whether the plugin accepts `secret` for the credential (only when it offers `verify`; nil when it does not).
    package func verify(credentialID: String, secret: Secret) async throws -> Bool? {
        guard offered.contains("verify") else { return nil }
        let request = secret.withRevealed { text in self.request(.verify) { $0.credentialID = credentialID; $0.secret = text } }
        return try await exchange(request, as: PluginProtocol.VerifyResponse.self).valid
    }

    // MARK: The exchange

    private func request(_ operation: PluginProtocol.Operation,
                         _ fill: (inout PluginProtocol.Request) -> Void = { _ in }) -> PluginProtocol.Request {
        var request = PluginProtocol.Request(operation: operation, issuer: name, config: settings.config, secrets: secrets)
        fill(&request)
        return request
    }

    /// One run: the request in, the response out, checked; every failure is a `PluginFailure` safe to print.
    func exchange<Response: Decodable>(_ request: PluginProtocol.Request, as: Response.Type) async throws(PluginFailure) -> Response {
        let operation = request.operation.rawValue
        if request.operation != .capabilities, settings.handshake != nil, !offered.contains(operation) {
            throw PluginFailure(issuer: name, "does not offer the \(operation) operation (its capabilities list \(offered.sorted()))")
        }
        let input: Data
        do { input = try JSONEncoder().encode(request) } catch {
            throw PluginFailure(issuer: name, "could not be sent its \(operation) request")
        }
        let output: PluginProcess.Output
        do {
            output = try await settings.process(context: environment).run(input: Array(input))
        } catch {
            throw PluginFailure(issuer: name, "failed \(operation): \(error)")
        }
        return try PluginProtocol.response(output, to: operation, as: Response.self, hiding: Array(secrets.values) + (request.secret.map { [$0] } ?? [])) {
            PluginFailure(issuer: name, $0)
        }
    }

    /// `text` with the resolved `exec.secrets`, the `known` secrets of the run, and secret-looking words replaced by
    /// `(sensitive)`.
    func mask(_ text: String, also known: [String] = []) -> String {
        SecretMask.line(text, hiding: Array(secrets.values) + known)
    }
}

/// Masks what looks like a secret in what a plugin printed.
enum SecretMask {
    /// The first `maxLines` lines of the first `maxBytes` bytes, each masked as `line(_:hiding:)` does, joined by ` | `.
    static func excerpt(_ bytes: [UInt8], maxBytes: Int = 4096, maxLines: Int = 20, hiding known: [String] = []) -> String {
        String(decoding: bytes.prefix(maxBytes), as: UTF8.self).split(whereSeparator: \.isNewline).prefix(maxLines)
            .map { line(String($0), hiding: known) }.joined(separator: " | ")
    }

    /// The line with every `known` secret and every word that looks like one replaced by `(sensitive)`; a line that
    /// still looks like it holds a credential (`PASSWORD=…`) is withheld whole.
    static func line(_ line: String, hiding known: [String] = []) -> String {
        var line = line
        for secret in known.sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
            line = line.replacingOccurrences(of: secret, with: "(sensitive)")
        }
        let redacted = SecretScanner.redact(line)
        return SecretScanner.lineFinding(redacted) == nil ? redacted : "(a line withheld: it looks like it holds a credential)"
    }
}

/// Why a plugin run failed, naming the issuer or store; never holds a secret.
package struct PluginFailure: Error, SafeToPrint {
    package var description: String

    init(issuer: String, _ detail: String) {
        description = "exec issuer '\(issuer)' \(detail)"
    }

    init(plugin: String, _ detail: String) {
        description = "the plugin \(plugin) \(detail)"
    }
}
