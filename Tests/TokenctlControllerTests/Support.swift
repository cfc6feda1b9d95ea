import TokenctlModel
@testable import TokenctlPlanner

/// A moment given as seconds since the epoch.
func ts(_ seconds: Int64) -> Timestamp { Timestamp(secondsSinceEpoch: seconds) }

/// A duration of whole seconds.
func secs(_ seconds: Int64) -> TokenDuration { TokenDuration(seconds: seconds) }

let day: Int64 = 86_400

/// A status row with only the fields a test cares about.
func row(_ name: String, issuer: String = "builtin", version: Int? = 1, issuedAt: Timestamp? = nil, expiresAt: Timestamp? = nil,
         lastUsedAt: Timestamp? = nil, managedSince: Timestamp? = nil, health: TokenStatus.Health = .ok,
         nextRotationAt: Timestamp? = nil) -> TokenStatus.Row {
    TokenStatus.Row(token: TokenID(namespace: "default", name: name), owner: "team", issuer: issuer, version: version, issuedAt: issuedAt,
                    ageSeconds: nil, expiresAt: expiresAt, nextRotationAt: nextRotationAt, lastUsedAt: lastUsedAt, managedSince: managedSince,
                    health: health, note: "")
}
