import TokenctlModel

/// Who mints credentials: implemented by each issuer type, apart from the engine that drives them.
package protocol CredentialIssuer: Sendable {
    /// Issues credentials, all or none; a request whose idempotency key was used before returns the earlier credential without a secret.
    func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential]
    /// Revokes credentials; revoking twice, or an id the issuer does not know, is fine.
    func revoke(_ credentialIDs: [String], now: Timestamp) async throws
    /// Changes a credential's scopes in place.
    func update(credentialID: String, scopes: [String]) async throws
    /// The issuer's inventory.
    func list() async throws -> [ObservedCredential]
    /// The credential issued under an idempotency key, if any (to repair an issue interrupted by a crash).
    func credential(forIdempotencyKey key: String) async throws -> String?
    /// Issues each credential on its own: one failing request (say, a scope the issuer does not know) leaves the
    /// others issued. The default calls `issue`, all or none.
    func issueEach(_ requests: [IssueRequest], now: Timestamp) async -> [Result<IssuedCredential, any Error>]
}

extension CredentialIssuer {
    package func issueEach(_ requests: [IssueRequest], now: Timestamp) async -> [Result<IssuedCredential, any Error>] {
        do {
            return try await issue(requests, now: now).map { .success($0) }
        } catch {
            return requests.map { _ in .failure(error) }
        }
    }
}

/// An issuer that can say which scopes it does not know (e.g. group roles missing on a database server),
/// asked by `plan --refresh` and `apply --refresh`.
package protocol ScopeChecking: Sendable {
    /// The scopes among `scopes` that name nothing at the issuer, each with the reason.
    func unknownScopes(_ scopes: Set<String>) async throws -> [String: String]
}

/// An issuer that keeps enough about each credential to rebuild lost state: which token and version it was issued
/// for, and the fingerprint of its secret, so that a secret found in a store can be matched to it.
package protocol RebuildableIssuer: CredentialIssuer {
    /// Every credential the issuer holds, with its idempotency key.
    func issuedRecords() async throws -> [IssuedRecord]
    /// The fingerprint this issuer gives a secret (as in `IssuedCredential.fingerprint`).
    func fingerprint(of secret: Secret) -> String
}

/// An issuer that hands out the same secret again when asked under a used idempotency key (capability
/// `replaysSecrets`): repair finishes an interrupted delivery with it instead of reading a store back, which is what
/// makes a crash between issue and delivery to a write-only store recoverable without a reissue.
package protocol SecretReplaying: CredentialIssuer {
    /// The secret of the credential issued under `idempotencyKey`, or nil when nothing was issued under it.
    func replaySecret(forIdempotencyKey key: String) async throws -> Secret?
}
