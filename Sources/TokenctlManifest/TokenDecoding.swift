import TokenctlModel

extension FileDecoder {
    /// Reads a Token's spec and joins it with its metadata.
    func decodeTokenSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var issuer: Located<String>?
        var scopes: [Located<String>]?
        var lifespanText: Located<String>?
        var every: Located<TokenDuration>?
        var overlap: Located<TokenDuration>?
        var window: RotationWindow?
        var deliveries: [Token.Delivery] = []
        var exception: Token.Exception?
        var secretFormat: Token.SecretFormat?
        let tokenID = metadata.map { TokenID(namespace: $0.namespace ?? "default", name: $0.metadata.name) }

        let isMapping = try mapping(first, object: "Token.spec", display: "Token spec") { key, _ throws(FatalDecodingError) in
            switch key {
            case "issuer":
                issuer = try string("issuer")
                if let issuer {
                    tokenReferences.append(NameReference(kind: "Issuer", name: issuer.value, token: tokenID, location: issuer.location))
                }
            case "scopes": scopes = try stringList("scopes")
            case "lifespan": lifespanText = try string("lifespan")
            case "rotation":
                try mapping(try next(), object: "Token.spec.rotation", display: "Token spec.rotation") { key, _ throws(FatalDecodingError) in
                    switch key {
                    case "every": every = try duration("rotation.every")
                    case "overlap": overlap = try duration("rotation.overlap")
                    case "window": window = try rotationWindow()
                    default: return false
                    }
                    return true
                }
            case "deliverTo":
                try sequence(display: "'deliverTo'") { item throws(FatalDecodingError) in
                    if let delivery = try decodeDelivery(item, token: tokenID) {
                        tokenReferences.append(NameReference(kind: "Store", name: delivery.store, token: tokenID, location: delivery.location))
                        if let clash = deliveries.first(where: { $0.store == delivery.store && $0.key == delivery.key }) {
                            error("duplicate-delivery", "store '\(delivery.store)' key '\(delivery.key)' is listed twice in deliverTo "
                                  + "(first at line \(clash.location.line), column \(clash.location.column)); remove one", at: delivery.location)
                        } else {
                            deliveries.append(delivery)
                        }
                    }
                }
            case "exception": exception = try decodeException(try next())
            case "secretFormat":
                secretFormat = try choice("secretFormat", Token.SecretFormat.allCases.map(\.rawValue)).flatMap { Token.SecretFormat(rawValue: $0.value) }
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Token", at: first, hint: "; a token needs at least issuer, scopes and lifespan") }
            return nil
        }
        if issuer == nil { missing("issuer", in: "Token spec", at: first, hint: "; name the Issuer that mints this token") }
        if scopes == nil {
            missing("scopes", in: "Token spec", at: first, hint: "; list what the token may do, such as [orders:read]")
        } else if let scopes {
            checkScopes(scopes, listAt: first)
        }
        guard let lifespanText else {
            missing("lifespan", in: "Token spec", at: first, hint: "; every credential needs an explicit lifespan such as 90d")
            return nil
        }
        let lifespan: Lifespan
        if lifespanText.value == "never" {
            lifespan = .never
        } else {
            do {
                let duration = try TokenDuration(parsing: lifespanText.value)
                guard duration.seconds > 0 else {
                    error("bad-duration", "lifespan must be longer than 0s", at: lifespanText.location)
                    return nil
                }
                lifespan = .finite(duration)
            } catch {
                reportDuration(error, field: "lifespan", text: lifespanText)
                return nil
            }
        }
        if let every, every.value.seconds <= 0 {
            error("bad-duration", "rotation.every must be longer than 0s", at: every.location)
        }
        checkRotationFits(lifespan: lifespan, lifespanAt: lifespanText.location, every: every, overlap: overlap?.value)
        if let exception, case .finite = lifespan {
            warning("unused-exception", "this exception has no effect: it only applies to tokens with 'lifespan: never'; remove it",
                    at: exception.location)
        }
        guard let metadata, let tokenID, let owner = metadata.owner, let issuer, let scopes else { return nil }
        let rotation = Token.Rotation(every: every?.value, overlap: overlap?.value ?? TokenDuration(seconds: 0), window: window)
        let locations = Token.Locations(issuer: issuer.location, lifespan: lifespanText.location, rotationEvery: every?.location,
                                        scopes: scopes.map(\.location), owner: owner.location)
        var token = Token(id: tokenID, owner: owner.value, metadata: metadata.metadata, issuer: issuer.value,
                          scopes: scopes.map(\.value), lifespan: lifespan, rotation: rotation, deliverTo: deliveries,
                          exception: exception, locations: locations)
        token.secretFormat = secretFormat
        return .token(token)
    }

    private func checkScopes(_ scopes: [Located<String>], listAt first: YAMLEvent) {
        if scopes.isEmpty {
            error("bad-value", "'scopes' must list at least one scope; a token that may do nothing is not needed", at: first)
        }
        for (index, scope) in scopes.enumerated() {
            if scope.value.containsWhitespace {
                error("bad-value", "invalid scope '\(scope.value)': scopes contain no spaces", at: scope.location)
            } else if let earlier = scopes[..<index].first(where: { $0.value == scope.value })?.location {
                // Scope lists are short: a linear search beats hashing them.
                error("duplicate-scope", "scope '\(scope.value)' is listed twice (first at line \(earlier.line), column \(earlier.column)); remove one",
                      at: scope.location)
            }
        }
    }

    /// `every + overlap` must fit in the lifespan, or a credential expires before its successor takes over.
    private func checkRotationFits(lifespan: Lifespan, lifespanAt: SourceLocation, every: Located<TokenDuration>?, overlap: TokenDuration?) {
        guard case .finite(let life) = lifespan else { return }
        let overlap = overlap ?? TokenDuration(seconds: 0)
        let effectiveEvery = every?.value ?? TokenDuration(seconds: life.seconds * 2 / 3)
        guard effectiveEvery.seconds + overlap.seconds > life.seconds else { return }
        let everyText = every == nil ? "the default rotation interval \(effectiveEvery) (two thirds of lifespan)" : "rotation.every \(effectiveEvery)"
        error("rotation-exceeds-lifespan",
              "\(everyText) plus rotation.overlap \(overlap) is longer than lifespan \(life): the token would expire before its "
              + "successor takes over; shorten rotation.every or rotation.overlap, or lengthen lifespan",
              at: every?.location ?? lifespanAt)
    }

    private func rotationWindow() throws(FatalDecodingError) -> RotationWindow? {
        guard let text = try string("rotation.window") else { return nil }
        do {
            return try RotationWindow(parsing: text.value)
        } catch {
            let detail = switch error {
            case .malformed: "write it as DAYS HH:MM-HH:MM ZONE"
            case .unknownDay(let day): "unknown day '\(day)'; use Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily"
            case .badTime(let time): "'\(time)' is not a time of day HH:MM"
            case .unsupportedZone(let zone): "zone '\(zone)' is not supported; use UTC or a fixed offset such as +02:00"
            case .emptyRange: "the window starts and ends at the same time"
            }
            self.error("bad-window", "invalid rotation window '\(text.value)': \(detail), e.g. \"Mon-Fri 09:00-17:00 UTC\"",
                       at: text.location)
            return nil
        }
    }

    private func decodeDelivery(_ first: YAMLEvent, token: TokenID?) throws(FatalDecodingError) -> Token.Delivery? {
        var store: Located<String>?
        var key: Located<String>?
        let isMapping = try mapping(first, object: "Token.spec.deliverTo[]", display: "a deliverTo item") { field, _ throws(FatalDecodingError) in
            switch field {
            case "store": store = try string("deliverTo.store")
            case "key": key = try string("deliverTo.key")
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { error("wrong-type", "a deliverTo item must name a store, e.g. {store: vault, key: payments/orders}", at: first) }
            return nil
        }
        guard let store else {
            missing("store", in: "a deliverTo item", at: first, hint: "; name the Store the secret goes to")
            return nil
        }
        if let key, key.value.isEmpty || key.value.utf8.contains(where: { $0 == 10 || $0 == 13 }) {
            error("bad-value", "deliverTo.key must be a non-empty single line", at: key.location)
            return nil
        }
        return Token.Delivery(store: store.value, key: key?.value ?? token?.description ?? "", location: store.location)
    }

    private func decodeException(_ first: YAMLEvent) throws(FatalDecodingError) -> Token.Exception? {
        var reason: Located<String>?
        var approvedBy: Located<String>?
        var ticket: Located<String>?
        var expires: Located<String>?
        let isMapping = try mapping(first, object: "Token.spec.exception", display: "Token spec.exception") { key, _ throws(FatalDecodingError) in
            switch key {
            case "reason": reason = try string("exception.reason")
            case "approvedBy": approvedBy = try string("exception.approvedBy")
            case "ticket": ticket = try string("exception.ticket")
            case "expires": expires = try string("exception.expires")
            default: return false
            }
            return true
        }
        guard isMapping else { return nil }
        let fields = [("reason", reason), ("approvedBy", approvedBy), ("ticket", ticket), ("expires", expires)]
        var complete = true
        for (name, value) in fields where value == nil || value?.value.isEmpty == true {
            missing(name, in: "Token spec.exception", at: first, hint: "; an exception needs reason, approvedBy, ticket and expires")
            complete = false
        }
        guard complete, let reason, let approvedBy, let ticket, let expires else { return nil }
        do {
            var moment = try Timestamp(parsing: expires.value)
            // A bare date means the exception holds through that whole day (UTC).
            if expires.value.utf8.count == 10 { moment = moment + TokenDuration(seconds: 86_400) }
            return Token.Exception(reason: reason.value, approvedBy: approvedBy.value, ticket: ticket.value, expires: moment,
                                   expiresText: expires.value,
                                   location: expires.location)
        } catch {
            self.error("bad-date", "invalid date '\(expires.value)' for 'exception.expires': write a date such as 2027-03-01 "
                       + "or a time such as 2027-03-01T12:00:00Z", at: expires.location)
            return nil
        }
    }
}
