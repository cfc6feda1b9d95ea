import TokenctlModel

extension FileDecoder {
    /// Reads a Notifier's spec: the webhook reference, format, signing key, selector, events and timeout.
    func decodeNotifierSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var url: Located<SecretReference>?
        var format: Located<String>?
        var signingKey: Located<SecretReference>?
        var selector = Notifier.Selector()
        var events: Notifier.Events?
        var timeout: Located<TokenDuration>?
        var eventsHadErrors = false
        let isMapping = try mapping(first, object: "Notifier.spec", display: "Notifier spec") { key, _ throws(FatalDecodingError) in
            switch key {
            case "url": url = try reference("url")
            case "format": format = try choice("format", Notifier.Format.allCases.map(\.rawValue))
            case "signingKey": signingKey = try reference("signingKey")
            case "timeout": timeout = try positiveDuration("timeout", atMost: Self.longestTimeout)
            case "selector": selector = try decodeNotifierSelector()
            case "events":
                let before = result.diagnostics.count
                events = try decodeNotifierEvents()
                eventsHadErrors = result.diagnostics.count > before
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Notifier", at: first, hint: "; add 'spec: {url: env:WEBHOOK_URL, events: {expiring: {}}}'") }
            return nil
        }
        if url == nil { missing("url", in: "Notifier spec", at: first, hint: "; give the webhook as env:NAME or file:PATH (a webhook URL is a credential)") }
        if events == nil {
            missing("events", in: "Notifier spec", at: first,
                    hint: "; name the events it wants, e.g. 'events: {expiring: {leadTimes: [14d, 3d, 1d]}, failing: {after: 1h}}'")
        } else if events?.isEmpty == true && !eventsHadErrors {
            error("bad-value", "a Notifier with no events sends nothing; name at least one of expiring, failing, ghost, unused, "
                  + "policyViolation, rateLimited", at: location(first))
            return nil
        }
        guard let metadata, let url, let events, events.isEmpty == false else { return nil }
        return .notifier(Notifier(metadata: metadata.metadata, url: url.value, format: format.flatMap { Notifier.Format(rawValue: $0.value) } ?? .json,
                                  signingKey: signingKey?.value, selector: selector, events: events,
                                  timeout: timeout?.value ?? Notifier.defaultTimeout))
    }

    private func decodeNotifierSelector() throws(FatalDecodingError) -> Notifier.Selector {
        var selector = Notifier.Selector()
        _ = try mapping(try next(), object: "Notifier.spec.selector", display: "a Notifier selector") { key, _ throws(FatalDecodingError) in
            switch key {
            case "owners": selector.owners = try stringList("owners")?.map { GlobPattern($0.value) }
            case "namespaces": selector.namespaces = try stringList("namespaces")?.map { GlobPattern($0.value) }
            default: return false
            }
            return true
        }
        return selector
    }

    private func decodeNotifierEvents() throws(FatalDecodingError) -> Notifier.Events? {
        var events = Notifier.Events()
        let isMapping = try mapping(try next(), object: "Notifier.spec.events", display: "Notifier events") { key, _ throws(FatalDecodingError) in
            switch key {
            case "expiring":
                var leadTimes = Notifier.Events.defaultLeadTimes
                try eventSettings("expiring") { field throws(FatalDecodingError) in
                    guard case "leadTimes" = field else { return false }
                    var collected: [TokenDuration] = []
                    let list = try sequence(display: "'leadTimes'") { item throws(FatalDecodingError) in
                        guard let text = try string("leadTimes", first: item) else { return }
                        let value: TokenDuration
                        do throws(TokenDuration.ParseError) {
                            value = try TokenDuration(parsing: text.value)
                        } catch {
                            reportDuration(error, field: "leadTimes", text: text)
                            return
                        }
                        if value.seconds <= 0 || value.seconds > FileDecoder.longestThreshold.seconds {
                            error("bad-value", "lead times must be longer than 0s and at most \(FileDecoder.longestThreshold), found '\(text.value)'",
                                  at: text.location)
                        } else {
                            collected.append(value)
                        }
                    }
                    if let list, collected.isEmpty {
                        error("bad-value", "'leadTimes' is empty; list when to warn, e.g. [14d, 3d, 1d]", at: location(list))
                    }
                    leadTimes = collected
                    return true
                }
                events.expiring = leadTimes.isEmpty ? nil : Array(Set(leadTimes)).sorted { $0.seconds > $1.seconds }
            case "failing":
                events.failingAfter = try afterSetting("failing", default: Notifier.Events.defaultFailingAfter)
            case "unused":
                events.unusedAfter = try afterSetting("unused", default: Notifier.Events.defaultUnusedAfter)
            case "ghost":
                try eventSettings("ghost") { _ in false }
                events.ghost = true
            case "policyViolation":
                try eventSettings("policyViolation") { _ in false }
                events.policyViolation = true
            case "rateLimited":
                try eventSettings("rateLimited") { _ in false }
                events.rateLimited = true
            default: return false
            }
            return true
        }
        return isMapping ? events : nil
    }

    /// Reads one event's settings mapping (`{}` or null for the defaults).
    private func eventSettings(_ event: String, field: (FieldKey) throws(FatalDecodingError) -> Bool) throws(FatalDecodingError) {
        _ = try mapping(try next(), object: "Notifier.spec.events.\(event)", display: "the '\(event)' event", body: { key, _ throws(FatalDecodingError) in
            try field(key)
        })
    }

    private func afterSetting(_ event: String, default value: TokenDuration) throws(FatalDecodingError) -> TokenDuration {
        var after = value
        try eventSettings(event) { field throws(FatalDecodingError) in
            guard case "after" = field else { return false }
            if let read = try positiveDuration("after") { after = read.value }
            return true
        }
        return after
    }

    /// The longest delivery timeout: a receiver slower than this is down.
    static let longestTimeout = TokenDuration(seconds: 300)
    /// The longest lead time or threshold: ten years.
    static let longestThreshold = TokenDuration(seconds: 3_650 * 86_400)

    /// A duration longer than zero and at most `atMost`.
    private func positiveDuration(_ field: String, atMost limit: TokenDuration = FileDecoder.longestThreshold) throws(FatalDecodingError)
        -> Located<TokenDuration>? {
        guard let value = try duration(field) else { return nil }
        guard value.value.seconds > 0 else {
            error("bad-value", "'\(field)' must be longer than 0s", at: value.location)
            return nil
        }
        guard value.value.seconds <= limit.seconds else {
            error("bad-value", "'\(field)' must be at most \(limit), found '\(value.value)'", at: value.location)
            return nil
        }
        return value
    }
}
