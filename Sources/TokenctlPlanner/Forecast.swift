import TokenctlModel

/// One thing that will happen to a token, and when.
package struct ForecastEvent: Hashable, Sendable, Codable {
    /// What will happen.
    package enum Kind: String, Hashable, Sendable, Codable {
        /// A credential will be issued (the token is in the manifests but not issued yet).
        case issue
        /// The next version will be issued and delivered.
        case rotate
        /// A superseded version will be revoked when its overlap ends.
        case retire
        /// A credential will expire (no rotation comes first).
        case expire
    }

    /// When.
    package var at: Timestamp
    /// What.
    package var kind: Kind
    /// Which token.
    package var token: TokenID
    /// Which version it concerns.
    package var version: Int
    /// In words.
    package var detail: String
}

/// What will rotate, retire or expire within a horizon: the schedule the planner follows, played forward.
package enum Forecast {
    /// At most this many events per token (a 10-minute rotation over 30 days would otherwise list thousands).
    package static let maxEventsPerToken = 20

    /// The events between `now` and `now + within`, earliest first. Settings come from `desired` when given, else from state.
    package static func events(desired: ManifestSet?, recorded: RecordedState, now: Timestamp, within: TokenDuration) -> [ForecastEvent] {
        let horizon = now + within
        var events: [ForecastEvent] = []
        let desiredByID = TokensByID(desired?.tokens ?? [])
        for token in recorded.tokens.values {
            if desired != nil && desiredByID[token.id] == nil {
                for version in token.versions where version.status != .revoked {
                    events.append(ForecastEvent(at: now, kind: .retire, token: token.id, version: version.version,
                                                detail: "removed from the manifests"))
                }
                continue
            }
            let settings = desiredByID[token.id].map(Schedule.Settings.init) ?? Schedule.Settings(token)
            var tokenEvents: [ForecastEvent] = []
            for version in token.versions where version.status == .retiring {
                if let retireAfter = version.retireAfter, retireAfter <= horizon {
                    tokenEvents.append(ForecastEvent(at: max(now, retireAfter), kind: .retire, token: token.id, version: version.version,
                                                     detail: "overlap ends"))
                }
            }
            guard let active = token.active else {
                tokenEvents.append(ForecastEvent(at: now, kind: .issue, token: token.id, version: token.latestVersion + 1,
                                                 detail: "no active credential"))
                events += tokenEvents
                continue
            }
            var issuedAt = active.issuedAt
            var expiresAt = active.expiresAt
            var version = active.version
            let lifespan = (desiredByID[token.id]?.lifespan ?? token.lifespan).duration
            while tokenEvents.count < maxEventsPerToken {
                guard var due = Schedule.rotationDue(id: token.id, issuedAt: issuedAt, settings: settings, now: now) else { break }
                if let latest = Schedule.latestSafeRotation(expiresAt: expiresAt, settings: settings), latest < due { due = latest }
                due = max(due, now)
                guard due <= horizon else { break }
                tokenEvents.append(ForecastEvent(at: due, kind: .rotate, token: token.id, version: version + 1,
                                                 detail: "v\(version) → v\(version + 1)"))
                let retireAt = due + settings.overlap
                if retireAt <= horizon && tokenEvents.count < maxEventsPerToken {
                    tokenEvents.append(ForecastEvent(at: retireAt, kind: .retire, token: token.id, version: version, detail: "overlap ends"))
                }
                issuedAt = due
                expiresAt = lifespan.map { due + $0 }
                version += 1
            }
            if settings.every == nil, let expiresAt, expiresAt <= horizon {
                tokenEvents.append(ForecastEvent(at: max(now, expiresAt), kind: .expire, token: token.id, version: version,
                                                 detail: "expires; it does not rotate"))
            }
            events += tokenEvents
        }
        for token in desired?.tokens ?? [] where recorded.tokens[token.id] == nil {
            events.append(ForecastEvent(at: now, kind: .issue, token: token.id, version: 1, detail: "not issued yet"))
        }
        return events.sorted { ($0.at, $0.token, $0.kind.rawValue, $0.version) < ($1.at, $1.token, $1.kind.rawValue, $1.version) }
    }
}

/// The JSON form of a forecast (format version 1).
package struct ForecastReport: Encodable, Sendable {
    package var formatVersion = 1
    package var from: Timestamp
    package var within: TokenDuration
    package var events: [ForecastEvent]

    package init(from: Timestamp, within: TokenDuration, events: [ForecastEvent]) {
        self.from = from
        self.within = within
        self.events = events
    }
}

extension Forecast {
    /// The events as a table, one line each, then counts by kind; a sentence when there are none.
    package static func text(_ events: [ForecastEvent], within horizon: TokenDuration) -> String {
        guard !events.isEmpty else { return "Nothing rotates, retires or expires within \(horizon).\n" }
        let width = max(24, events.map { $0.token.description.count }.max() ?? 0)
        var text = ""
        func padded(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        for event in events {
            let moment = String(event.at.description.map { $0 == "T" ? " " : $0 }.dropLast(4))
            text += "\(moment) UTC  \(padded(event.kind.rawValue, 7)) \(padded(event.token.description, width)) v\(event.version)  \(event.detail)\n"
        }
        let counts = Dictionary(grouping: events, by: \.kind).mapValues(\.count)
        let kinds: [ForecastEvent.Kind] = [.issue, .rotate, .retire, .expire]
        return text + "\nWithin \(horizon): " + kinds.compactMap { kind in counts[kind].map { "\($0) to \(kind.rawValue)" } }
            .joined(separator: ", ") + ".\n"
    }
}
