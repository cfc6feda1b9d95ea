import TokenctlModel

/// When a token's current credential falls due for rotation: a pure function of its settings and the clock.
///
/// Tokens due at the same moment are spread deterministically, by a hash of their id: up to a
/// twentieth of their interval earlier, or across the first half of their rotation window, so that
/// a thousand tokens applied together never rotate in the same second.
package enum Schedule {
    /// The rotation settings a schedule needs, from manifests or from state.
    package struct Settings: Hashable, Sendable {
        /// The rotation interval; nil when the token does not rotate.
        package var every: TokenDuration?
        /// The overlap after rotation.
        package var overlap: TokenDuration
        /// The rotation window.
        package var window: RotationWindow?

        /// Creates settings.
        package init(every: TokenDuration?, overlap: TokenDuration, window: RotationWindow?) {
            self.every = every
            self.overlap = overlap
            self.window = window
        }

        /// A desired token's settings.
        package init(_ token: Token) {
            self.init(every: token.effectiveRotationEvery, overlap: token.rotation.overlap, window: token.rotation.window)
        }

        /// A recorded token's settings (an unparseable recorded window counts as none).
        package init(_ token: RecordedToken) {
            self.init(every: token.rotationEvery, overlap: token.overlap, window: token.window.flatMap { try? RotationWindow(parsing: $0) })
        }
    }

    /// A stable 64-bit hash of a token id (FNV-1a), the same on every machine and run.
    package static func spreadHash(_ id: TokenID) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.namespace.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash = (hash ^ 0x2f) &* 0x0000_0100_0000_01b3
        for byte in id.name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// When the credential issued at `issuedAt` should be rotated; nil when it never rotates.
    ///
    /// With a window, the rotation starts inside an opening: a rotation that fell due while the window
    /// was closed waits for the next opening after `now` (spread across its first half), never runs outside it.
    package static func rotationDue(id: TokenID, issuedAt: Timestamp, settings: Settings, now: Timestamp? = nil) -> Timestamp? {
        guard let every = settings.every, every.seconds > 0 else { return nil }
        let hash = spreadHash(id)
        let earlier = Int64(hash % UInt64(max(1, every.seconds / 20)))
        let base = Timestamp(secondsSinceEpoch: issuedAt.secondsSinceEpoch + every.seconds - earlier)
        guard let window = settings.window else { return base }
        let offset = Int64((hash >> 20) % UInt64(max(1, window.lengthSeconds / 2)))
        var probe = max(base, now ?? base)
        for _ in 0..<16 {
            guard let occurrence = window.occurrence(notEndedBy: probe) else { return base }
            let candidate = max(base, occurrence.start + TokenDuration(seconds: offset))
            if candidate < occurrence.end { return candidate }
            probe = occurrence.end
        }
        return base
    }

    /// The last moment a rotation can start so that the successor is active before the credential expires.
    package static func latestSafeRotation(expiresAt: Timestamp?, settings: Settings) -> Timestamp? {
        guard let expiresAt else { return nil }
        return Timestamp(secondsSinceEpoch: expiresAt.secondsSinceEpoch - settings.overlap.seconds)
    }
}

/// Short human renderings of durations between moments, e.g. `31d`, `5h`.
enum Age {
    static func text(_ seconds: Int64) -> String {
        let seconds = max(0, seconds)
        switch seconds {
        case 0..<120: return "\(seconds)s"
        case 120..<7_200: return "\(seconds / 60)m"
        case 7_200..<172_800: return "\(seconds / 3_600)h"
        default: return "\(seconds / 86_400)d"
        }
    }
}

extension Timestamp {
    /// `2026-11-28 04:10 UTC`, for plans.
    package var minuteText: String {
        let full = description  // 2026-11-28T04:10:00Z
        return String(full.prefix(10)) + " " + String(full.dropFirst(11).prefix(5)) + " UTC"
    }
}
