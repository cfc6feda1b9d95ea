/// Requests to issuers and what they return.
/// What to issue.
package struct IssueRequest: Sendable {
    /// The Issuer's name.
    package var issuer: String
    /// The accountable owner.
    package var owner: String
    /// What the token is for, e.g. `payments/orders-api-ci`.
    package var subject: String
    /// Its scopes.
    package var scopes: [String]
    /// When it expires; nil for never.
    package var expiresAt: Timestamp?
    /// Makes a retried issue return the first result instead of a second credential.
    package var idempotencyKey: String?
    /// The version being issued (1 for the first, one more per rotation), for issuers that name credentials by it.
    package var version: Int?
    /// What to return as the secret, for issuers whose credentials have parts.
    package var secretFormat: Token.SecretFormat?

    /// Creates a request.
    package init(issuer: String, owner: String, subject: String, scopes: [String], expiresAt: Timestamp?, idempotencyKey: String?,
                version: Int? = nil, secretFormat: Token.SecretFormat? = nil) {
        self.version = version
        self.secretFormat = secretFormat
        self.issuer = issuer
        self.owner = owner
        self.subject = subject
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.idempotencyKey = idempotencyKey
    }
}

/// A newly issued credential.
package struct IssuedCredential: Sendable {
    /// The issuer's id for it.
    package var credentialID: String
    /// The secret; nil when an idempotent retry found an earlier issue (whose secret is gone).
    package var secret: Secret?
    /// A hash of the secret (never the secret).
    package var fingerprint: String
    /// A safe hint, e.g. `tkc_…a91f`.
    package var hint: String

    /// Creates an issued credential.
    package init(credentialID: String, secret: Secret?, fingerprint: String, hint: String) {
        self.credentialID = credentialID
        self.secret = secret
        self.fingerprint = fingerprint
        self.hint = hint
    }
}

/// An error whose description never contains a secret (driver errors are wrapped into one before printing).
package protocol SafeToPrint: Error, CustomStringConvertible {}



/// A credential as its issuer recorded it, with the idempotency key it was issued under: what `state rebuild`
/// reconstructs lost state from.
package struct IssuedRecord: Hashable, Sendable {
    /// The issuer's id for it.
    package var credentialID: String
    /// The idempotency key of the issue (`NAMESPACE/NAME#vVERSION#NONCE` for tokenctl's own), if any.
    package var idempotencyKey: String?
    /// The hash of the secret the issuer keeps, as the engine records it (never the secret).
    package var fingerprint: String
    /// The scopes it was issued with.
    package var scopes: [String]
    /// When it was issued.
    package var issuedAt: Timestamp
    /// When it expires; nil for never.
    package var expiresAt: Timestamp?
    /// Whether it was revoked.
    package var revoked: Bool

    /// Creates a record.
    package init(credentialID: String, idempotencyKey: String?, fingerprint: String, scopes: [String], issuedAt: Timestamp,
                expiresAt: Timestamp?, revoked: Bool) {
        self.credentialID = credentialID
        self.idempotencyKey = idempotencyKey
        self.fingerprint = fingerprint
        self.scopes = scopes
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revoked = revoked
    }

    /// The token and version tokenctl issued it for, read from its idempotency key.
    package var issuedFor: (token: TokenID, version: Int)? {
        guard let key = idempotencyKey else { return nil }
        let parts = key.split(separator: "#")
        guard parts.count == 3, parts[1].hasPrefix("v"), let version = Int(parts[1].dropFirst()), version > 0,
              let token = TokenID(text: String(parts[0])) else { return nil }
        return (token, version)
    }
}

