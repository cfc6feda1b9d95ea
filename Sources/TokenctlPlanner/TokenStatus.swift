import TokenctlModel

/// How each managed token stands: the data behind `tokenctl status`.
package enum TokenStatus {
    /// A token's health.
    package enum Health: String, Hashable, Sendable, Codable {
        /// Nothing to do.
        case ok
        /// Its rotation is due (the next apply or reconcile pass rotates it).
        case rotationDue = "rotation due"
        /// It expires before a rotation would replace it in time.
        case expiring
        /// Its credential has expired.
        case expired
        /// Something needs a person: no active credential, or an apply stopped half-way.
        case needsAttention = "needs attention"
    }

    /// One row of the status table.
    package struct Row: Hashable, Sendable, Codable {
        /// The token.
        package var token: TokenID
        /// Its owner.
        package var owner: String
        /// Its issuer.
        package var issuer: String
        /// The active version, if any.
        package var version: Int?
        /// When the active version was issued.
        package var issuedAt: Timestamp?
        /// The active version's age.
        package var ageSeconds: Int64?
        /// When the active version expires; nil for never.
        package var expiresAt: Timestamp?
        /// When the next rotation is due.
        package var nextRotationAt: Timestamp?
        /// When any of its versions was last used, when known.
        package var lastUsedAt: Timestamp?
        /// When its first recorded version was issued: how long tokenctl has managed it.
        package var managedSince: Timestamp?
        /// How it stands.
        package var health: Health
        /// What to do about it, in words.
        package var note: String
    }

    /// The JSON document of `status --json`.
    package struct Report: Sendable, Encodable {
        /// The format version.
        package var formatVersion = 1
        /// When the report was made.
        package var generatedAt: Timestamp
        /// The state serial read.
        package var stateSerial: Int64
        /// One row per token.
        package var tokens: [Row]

        /// Creates a report.
        package init(generatedAt: Timestamp, stateSerial: Int64, tokens: [Row]) {
            self.generatedAt = generatedAt
            self.stateSerial = stateSerial
            self.tokens = tokens
        }
    }

    /// The rows for every recorded token, sorted by id. `lastUsed` adds last-use times known to issuers by credential id.
    package static func rows(_ state: RecordedState, lastUsed: [String: Timestamp] = [:], now: Timestamp) -> [Row] {
        state.tokens.values.sorted { $0.id < $1.id }.map { token in
            let settings = Schedule.Settings(token)
            let active = token.active
            let pending = token.versions.contains { $0.status == .pending }
            let due = active.flatMap { Schedule.rotationDue(id: token.id, issuedAt: $0.issuedAt, settings: settings, now: now) }
            let latestSafe = Schedule.latestSafeRotation(expiresAt: active?.expiresAt, settings: settings)
            // Any version counts: during an overlap the clients still on the old version are using the token.
            let used = token.versions.flatMap { [$0.lastUsedAt, lastUsed[$0.credentialID]] }.compactMap { $0 }.max()
            let health: Health
            let note: String
            if active == nil {
                health = .needsAttention
                note = pending ? "an apply stopped before the first credential was stored; run apply" : "no active credential; run apply"
            } else if let expiresAt = active?.expiresAt, expiresAt <= now {
                health = .expired
                note = "expired \(expiresAt.minuteText)"
            } else if pending {
                health = .needsAttention
                note = "an apply stopped half-way; the next apply repairs it"
            } else if let latestSafe, latestSafe <= now {
                health = .expiring
                note = "expires before a rotation can overlap it"
            } else if let due, due <= now {
                health = .rotationDue
                note = settings.window.map { "due; waits for window \($0)" } ?? "due"
            } else {
                health = .ok
                note = ""
            }
            return Row(token: token.id, owner: token.owner, issuer: token.issuer, version: active?.version, issuedAt: active?.issuedAt,
                       ageSeconds: active.map { now.secondsSinceEpoch - $0.issuedAt.secondsSinceEpoch }, expiresAt: active?.expiresAt,
                       nextRotationAt: due, lastUsedAt: used, managedSince: token.versions.map(\.issuedAt).min(), health: health, note: note)
        }
    }

    /// The human table.
    package static func table(_ rows: [Row]) -> String {
        guard !rows.isEmpty else { return "No managed tokens yet. Run tokenctl apply to issue the tokens in your manifests.\n" }
        let header = ["TOKEN", "ISSUER", "VERSION", "AGE", "EXPIRES", "NEXT ROTATION", "LAST USED", "HEALTH"]
        var table = [header]
        for row in rows {
            table.append([
                row.token.description, row.issuer, row.version.map { "v\($0)" } ?? "-", row.ageSeconds.map(Age.text) ?? "-",
                row.expiresAt?.minuteText ?? "never", row.nextRotationAt?.minuteText ?? "-", row.lastUsedAt?.minuteText ?? "never",
                row.health.rawValue + (row.note.isEmpty || row.health == .ok ? "" : " (\(row.note))"),
            ])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        var text = ""
        for line in table {
            text += line.enumerated().map { index, cell in index == line.count - 1 ? cell : cell.padding(to: widths[index]) }
                .joined(separator: "  ") + "\n"
        }
        let counts = Dictionary(grouping: rows, by: \.health).mapValues(\.count)
        text += "\n\(counted(rows.count, "token")): " + [Health.ok, .rotationDue, .expiring, .expired, .needsAttention]
            .compactMap { health in counts[health].map { "\($0) \(health.rawValue)" } }.joined(separator: ", ") + ".\n"
        return text
    }
}
