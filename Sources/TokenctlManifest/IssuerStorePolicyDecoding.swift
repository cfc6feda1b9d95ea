import TokenctlModel

extension FileDecoder {
    /// Reads an Issuer's spec.
    func decodeIssuerSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var type: Located<String>?
        var ghosts: Located<String>?
        var sections: [(name: String, at: YAMLEvent)] = []
        var prefix: Located<String>?
        var postgres: Issuer.PostgresSettings?
        var exec: (command: [String], timeout: TokenDuration?)?
        let isMapping = try mapping(first, object: "Issuer.spec", display: "Issuer spec") { key, keyEvent throws(FatalDecodingError) in
            switch key {
            case "type": type = try choice("type", ManifestFields.issuerTypes)
            case "ghosts": ghosts = try choice("ghosts", GhostPolicy.allCases.map(\.rawValue))
            case "builtin":
                sections.append((key.name, keyEvent))
                try mapping(try next(), object: "Issuer.spec.builtin", display: "Issuer spec.builtin") { field, _ throws(FatalDecodingError) in
                    guard case "prefix" = field else { return false }
                    prefix = try string("builtin.prefix")
                    return true
                }
            case "postgres":
                sections.append((key.name, keyEvent))
                postgres = try decodePostgres(try next())
            case "exec":
                sections.append((key.name, keyEvent))
                exec = try decodeExec(try next(), object: "Issuer.spec.exec")
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Issuer", at: first, hint: "; add 'spec: {type: builtin}'") }
            return nil
        }
        guard let type else {
            missing("type", in: "Issuer spec", at: first, hint: "; use one of \(ManifestFields.issuerTypes.joined(separator: ", "))")
            return nil
        }
        guard checkSections(sections, type: type.value, of: "an issuer", sectionOf: { $0 }) else { return nil }
        if let prefix, !Self.isIssuerPrefix(prefix.value) {
            error("bad-value", "invalid builtin.prefix '\(prefix.value)': use 2 to 16 lowercase letters and digits, starting with a letter",
                  at: prefix.location)
            return nil
        }
        let kind: Issuer.Kind
        switch type.value {
        case "builtin": kind = .builtin(prefix: prefix?.value ?? "tkc")
        case "postgres":
            guard let postgres else {
                if !sections.contains(where: { $0.name == "postgres" }) {
                    missing("postgres", in: "Issuer spec", at: first, hint: "; a postgres issuer needs 'postgres: {url: env:PG_ADMIN_URL}'")
                }
                return nil
            }
            kind = .postgres(postgres)
        default:
            guard let exec else {
                if !sections.contains(where: { $0.name == "exec" }) {
                    missing("exec", in: "Issuer spec", at: first, hint: "; an exec issuer needs 'exec: {command: [...]}'")
                }
                return nil
            }
            kind = .exec(command: exec.command, timeout: exec.timeout)
            warning("not-implemented", "exec issuers are not implemented yet: apply reports every change of their tokens as "
                    + "failed; use the builtin or postgres issuer until then", at: location(first))
        }
        guard let metadata else { return nil }
        return .issuer(Issuer(metadata: metadata.metadata, kind: kind, ghosts: ghosts.flatMap { GhostPolicy(rawValue: $0.value) } ?? .report))
    }

    /// Reads a Store's spec.
    func decodeStoreSpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var type: Located<String>?
        var sections: [(name: String, at: YAMLEvent)] = []
        var encrypted: (path: String, key: SecretReference)?
        var dotenvPath: String?
        var exec: (command: [String], timeout: TokenDuration?)?
        let isMapping = try mapping(first, object: "Store.spec", display: "Store spec") { key, keyEvent throws(FatalDecodingError) in
            switch key {
            case "type": type = try choice("type", ManifestFields.storeTypes)
            case "encryptedFile":
                sections.append((key.name, keyEvent))
                let section = try next()
                var path: Located<String>?
                var reference: Located<SecretReference>?
                let present = try mapping(section, object: "Store.spec.encryptedFile", display: "Store spec.encryptedFile") { field, _ throws(FatalDecodingError) in
                    switch field {
                    case "path": path = try string("encryptedFile.path")
                    case "key": reference = try self.reference("encryptedFile.key")
                    default: return false
                    }
                    return true
                }
                if present {
                    if path == nil { missing("path", in: "Store spec.encryptedFile", at: section, hint: "; name the file to write") }
                    if reference == nil {
                        missing("key", in: "Store spec.encryptedFile", at: section, hint: "; refer to the encryption key, e.g. env:TOKENCTL_MASTER_KEY")
                    }
                    if let path, let reference { encrypted = (path.value, reference.value) }
                }
            case "dotenv":
                sections.append((key.name, keyEvent))
                let section = try next()
                var path: Located<String>?
                let present = try mapping(section, object: "Store.spec.dotenv", display: "Store spec.dotenv") { field, _ throws(FatalDecodingError) in
                    guard case "path" = field else { return false }
                    path = try string("dotenv.path")
                    return true
                }
                if present, path == nil { missing("path", in: "Store spec.dotenv", at: section, hint: "; name the file to write") }
                dotenvPath = path?.value
            case "exec":
                sections.append((key.name, keyEvent))
                exec = try decodeExec(try next(), object: "Store.spec.exec")
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("spec", in: "Store", at: first, hint: "; add 'spec: {type: encrypted-file, encryptedFile: {...}}'") }
            return nil
        }
        guard let type else {
            missing("type", in: "Store spec", at: first, hint: "; use one of \(ManifestFields.storeTypes.joined(separator: ", "))")
            return nil
        }
        let sectionName = ["encrypted-file": "encryptedFile", "dotenv": "dotenv", "exec": "exec"]
        guard checkSections(sections, type: type.value, of: "a store", sectionOf: { sectionName[$0] ?? $0 }) else { return nil }
        let kind: Store.Kind
        switch type.value {
        case "encrypted-file":
            guard let encrypted else {
                if sections.isEmpty {
                    missing("encryptedFile", in: "Store spec", at: first, hint: "; add 'encryptedFile: {path: …, key: env:…}'")
                }
                return nil
            }
            kind = .encryptedFile(path: encrypted.path, key: encrypted.key)
        case "dotenv":
            guard let dotenvPath else {
                if sections.isEmpty { missing("dotenv", in: "Store spec", at: first, hint: "; add 'dotenv: {path: …}'") }
                return nil
            }
            kind = .dotenv(path: dotenvPath)
        default:
            guard let exec else {
                if sections.isEmpty { missing("exec", in: "Store spec", at: first, hint: "; add 'exec: {command: [...]}'") }
                return nil
            }
            kind = .exec(command: exec.command, timeout: exec.timeout)
            warning("not-implemented", "exec stores are not implemented yet: apply reports every delivery to them as failed; "
                    + "use an encrypted-file or dotenv store until then", at: location(first))
        }
        guard let metadata else { return nil }
        return .store(Store(metadata: metadata.metadata, kind: kind))
    }

    /// Reads a Policy's spec.
    func decodePolicySpec(_ first: YAMLEvent, metadata: DecodedMetadata?) throws(FatalDecodingError) -> DecodedResource? {
        var maxLifespan: Located<TokenDuration>?
        var maxRotationEvery: Located<TokenDuration>?
        var permanent: Located<String>?
        var rules: [Policy.ScopeRule]?
        let isMapping = try mapping(first, object: "Policy.spec", display: "Policy spec") { key, _ throws(FatalDecodingError) in
            switch key {
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
                              scopes: rules))
    }

    private func decodePostgres(_ first: YAMLEvent) throws(FatalDecodingError) -> Issuer.PostgresSettings? {
        var url: Located<SecretReference>?
        var template: Located<String>?
        var tlsMode: Located<String>?
        var caFile: Located<String>?
        var reassign: Located<String>?
        let present = try mapping(first, object: "Issuer.spec.postgres", display: "Issuer spec.postgres") { key, _ throws(FatalDecodingError) in
            switch key {
            case "url": url = try reference("postgres.url")
            case "roleTemplate": template = try string("postgres.roleTemplate")
            case "reassignOwnedTo": reassign = try string("postgres.reassignOwnedTo")
            case "tls":
                try mapping(try next(), object: "Issuer.spec.postgres.tls", display: "Issuer spec.postgres.tls") { field, _ throws(FatalDecodingError) in
                    switch field {
                    case "mode": tlsMode = try choice("tls.mode", ManifestFields.postgresTLSModes)
                    case "caFile": caFile = try string("tls.caFile")
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        guard present else { return nil }
        guard let url else {
            missing("url", in: "Issuer spec.postgres", at: first, hint: "; refer to the admin connection URL, e.g. env:PG_ADMIN_URL")
            return nil
        }
        if let template, !template.value.contains("{version}") {
            error("bad-value", "postgres.roleTemplate must contain {version}, so that a rotation can create the next role beside the old one",
                  at: template.location)
            return nil
        }
        return Issuer.PostgresSettings(url: url.value, roleTemplate: template?.value ?? Issuer.PostgresSettings.defaultRoleTemplate,
                                       tlsMode: tlsMode?.value ?? "require", tlsCAFile: caFile?.value, reassignOwnedTo: reassign?.value)
    }

    private func decodeExec(_ first: YAMLEvent, object: String) throws(FatalDecodingError) -> (command: [String], timeout: TokenDuration?)? {
        var command: [Located<String>]?
        var timeout: Located<TokenDuration>?
        let present = try mapping(first, object: object, display: object.replacingFirstDot()) { key, _ throws(FatalDecodingError) in
            switch key {
            case "command": command = try stringList("exec.command")
            case "timeout": timeout = try duration("exec.timeout")
            default: return false
            }
            return true
        }
        guard present else { return nil }
        guard let command, !command.isEmpty else {
            missing("command", in: object.replacingFirstDot(), at: first, hint: "; give the program and its arguments as a list")
            return nil
        }
        return (command.map(\.value), timeout?.value)
    }

    /// Only the section that matches `type` may be present.
    private func checkSections(_ sections: [(name: String, at: YAMLEvent)], type: String, of what: String,
                               sectionOf: (String) -> String) -> Bool {
        var valid = true
        for section in sections where section.name != sectionOf(type) {
            error("wrong-section", "'\(section.name)' does not apply to \(what) of type '\(type)'; remove it or change 'type'",
                  at: section.at)
            valid = false
        }
        return valid
    }

    static func isIssuerPrefix(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (2...16).contains(bytes.count), bytes[0] >= 97, bytes[0] <= 122 else { return false }
        return bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }
}

extension String {
    /// `Issuer.spec.exec` → `Issuer spec.exec`, for messages.
    func replacingFirstDot() -> String {
        guard let dot = firstIndex(of: ".") else { return self }
        return self[..<dot] + " " + self[index(after: dot)...]
    }
}
