import TokenctlDrivers
import TokenctlModel

extension FileDecoder {
    /// Reads an Issuer's spec: `type`, `ghosts`, and the settings section that the type's driver decodes.
    func decodeIssuerSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var type: Located<String>?
        var ghosts: Located<String>?
        var sections: [(name: String, at: YAMLEvent, node: ConfigNode)] = []
        let isMapping = try mapping(first, object: "Issuer.spec", display: "Issuer spec") { key, keyEvent throws(FatalDecodingError) in
            switch key {
            case "type": type = try choice("type", registry.issuerTypes)
            case "ghosts": ghosts = try choice("ghosts", GhostPolicy.allCases.map(\.rawValue))
            default:
                let name = key.name
                guard registry.issuerKinds.contains(where: { $0.section == name }) else { return false }
                sections.append((name, keyEvent, try configNode(try next(), field: name, display: "Issuer spec.\(name)")))
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Issuer", at: first, hint: "; add 'spec: {type: builtin}'") }
            return nil
        }
        guard let type, let kind = registry.issuerKind(type.value) else {
            if type == nil {
                missing("type", in: "Issuer spec", at: first, hint: "; use one of \(registry.issuerTypes.joined(separator: ", "))")
            }
            return nil
        }
        guard checkSections(sections, type: type.value, section: kind.section, of: "an issuer") else { return nil }
        var reader = SettingsReader()
        let settings = kind.decode(sections.first?.node, spec: location(first), reader: &reader)
        report(reader.diagnostics)
        guard let settings, let metadata else { return nil }
        return .issuer(Issuer(metadata: metadata.metadata, driver: DriverConfiguration(type: kind.type, settings: settings),
                              capabilities: kind.capabilities(of: settings), ghosts: ghosts.flatMap { GhostPolicy(rawValue: $0.value) } ?? .report))
    }

    /// Reads a Store's spec: `type` and the settings section that the type's driver decodes.
    func decodeStoreSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var type: Located<String>?
        var sections: [(name: String, at: YAMLEvent, node: ConfigNode)] = []
        let isMapping = try mapping(first, object: "Store.spec", display: "Store spec") { key, keyEvent throws(FatalDecodingError) in
            switch key {
            case "type": type = try choice("type", registry.storeTypes)
            default:
                let name = key.name
                guard registry.storeKinds.contains(where: { $0.section == name }) else { return false }
                sections.append((name, keyEvent, try configNode(try next(), field: name, display: "Store spec.\(name)")))
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Store", at: first, hint: "; add 'spec: {type: encrypted-file, encryptedFile: {...}}'") }
            return nil
        }
        guard let type, let kind = registry.storeKind(type.value) else {
            if type == nil {
                missing("type", in: "Store spec", at: first, hint: "; use one of \(registry.storeTypes.joined(separator: ", "))")
            }
            return nil
        }
        guard checkSections(sections, type: type.value, section: kind.section, of: "a store") else { return nil }
        var reader = SettingsReader()
        let settings = kind.decode(sections.first?.node, spec: location(first), reader: &reader)
        report(reader.diagnostics)
        guard let settings, let metadata else { return nil }
        return .store(Store(metadata: metadata.metadata, driver: DriverConfiguration(type: kind.type, settings: settings),
                            capabilities: kind.capabilities(of: settings)))
    }

    /// Reads a Policy's spec.
    func decodePolicySpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var maxLifespan: Located<TokenDuration>?
        var maxRotationEvery: Located<TokenDuration>?
        var permanent: Located<String>?
        var rules: [Policy.ScopeRule]?
        var maxIssued: IssueRateLimit?
        let isMapping = try mapping(first, object: "Policy.spec", display: "Policy spec") { key, _ throws(FatalDecodingError) in
            switch key {
            case "maxIssued": maxIssued = try decodeIssueRateLimit()
            case "maxLifespan": maxLifespan = try duration("maxLifespan")
            case "maxRotationEvery": maxRotationEvery = try duration("maxRotationEvery")
            case "permanentTokens": permanent = try choice("permanentTokens", PermanentTokenRule.allCases.map(\.rawValue))
            case "scopes":
                var collected: [Policy.ScopeRule] = []
                let list = try sequence(display: "'scopes'") { item throws(FatalDecodingError) in
                    var owners: [Located<String>]?
                    var allow: [Located<String>]?
                    let present = try mapping(item, object: "Policy.spec.scopes[]", display: "a scopes rule") { field, _ throws(FatalDecodingError) in
                        switch field {
                        case "owners": owners = try stringList("owners")
                        case "allow": allow = try stringList("allow")
                        default: return false
                        }
                        return true
                    }
                    guard present else { return }
                    if owners?.isEmpty ?? true { missing("owners", in: "a scopes rule", at: item, hint: "; list the owners it applies to") }
                    if allow?.isEmpty ?? true { missing("allow", in: "a scopes rule", at: item, hint: "; list the scope patterns it allows") }
                    if let owners, let allow, !owners.isEmpty, !allow.isEmpty {
                        collected.append(Policy.ScopeRule(owners: owners.map { GlobPattern($0.value) },
                                                          allow: allow.map { GlobPattern($0.value) }))
                    }
                }
                if list != nil { rules = collected }
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Policy", at: first, hint: "; add 'spec: {maxLifespan: 365d}'") }
            return nil
        }
        guard let metadata else { return nil }
        return .policy(Policy(metadata: metadata.metadata, maxLifespan: maxLifespan?.value, maxRotationEvery: maxRotationEvery?.value,
                              permanentTokens: permanent.flatMap { PermanentTokenRule(rawValue: $0.value) } ?? .requireException,
                              scopes: rules, maxIssued: maxIssued))
    }

    /// Reads `maxIssued: {count: 100, per: 1h, by: owner}`.
    private func decodeIssueRateLimit() throws(FatalDecodingError) -> IssueRateLimit? {
        var count: Located<String>?
        var per: Located<TokenDuration>?
        var by: Located<String>?
        let first = try next()
        let isMapping = try mapping(first, object: "Policy.spec.maxIssued", display: "'maxIssued'") { key, _ throws(FatalDecodingError) in
            switch key {
            case "count": count = try string("count")
            case "per": per = try duration("per")
            case "by": by = try choice("by", IssueRateLimit.Scope.allCases.map(\.rawValue))
            default: return false
            }
            return true
        }
        guard isMapping else { return nil }
        if count == nil { missing("count", in: "'maxIssued'", at: first, hint: "; say how many new credentials, e.g. 'count: 100'") }
        if per == nil { missing("per", in: "'maxIssued'", at: first, hint: "; say per how long, e.g. 'per: 1h'") }
        guard let count, let per else { return nil }
        guard let number = Int(count.value), number > 0 else {
            error("bad-value", "'count' must be a whole number above 0, found '\(count.value)'", at: count.location)
            return nil
        }
        guard per.value.seconds > 0 else {
            error("bad-value", "'per' must be longer than 0s", at: per.location)
            return nil
        }
        return IssueRateLimit(count: number, per: per.value, by: by.flatMap { IssueRateLimit.Scope(rawValue: $0.value) } ?? .owner)
    }

    /// Only the section that matches `type` may be present.
    private func checkSections(_ sections: [(name: String, at: YAMLEvent, node: ConfigNode)], type: String, section: String,
                               of what: String) -> Bool {
        var valid = true
        for present in sections where present.name != section {
            error("wrong-section", "'\(present.name)' does not apply to \(what) of type '\(type)'; remove it or change 'type'",
                  at: present.at)
            valid = false
        }
        return valid
    }
}
