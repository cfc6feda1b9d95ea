import Foundation
import Logging
import TokenctlDrivers
import TokenctlModel

/// Settings of a `postgres` issuer.
package struct PostgresSettings: DriverSettings {
    /// The administrative connection URL.
    package var url: SecretReference
    /// Template for role names, e.g. `tk_{namespace}_{name}_v{version}`.
    package var roleTemplate: String
    /// TLS mode: `disable`, `require` or `verify-full`.
    package var tlsMode: String
    /// CA bundle for `verify-full`.
    package var tlsCAFile: String?
    /// Role that receives objects owned by a retired role.
    package var reassignOwnedTo: String?

    /// The default role-name template.
    package static let defaultRoleTemplate = "tk_{namespace}_{name}_v{version}"
    /// The TLS modes.
    package static let tlsModes = ["disable", "require", "verify-full"]

    /// The template filled in and made a safe role name: lower case, `[a-z0-9_]` only (other characters become
    /// `_`). Distinct tokens can give the same name (`a/b-c` and `a-b/c`); validation refuses such a set.
    package func cleanRoleName(namespace: String, name: String, version: Int) -> String {
        Self.cleanRoleName(template: roleTemplate, namespace: namespace, name: name, version: version)
    }

    /// `cleanRoleName` for a template on its own.
    package static func cleanRoleName(template roleTemplate: String, namespace: String, name: String, version: Int) -> String {
        let raw = roleTemplate.replacing("{namespace}", with: namespace).replacing("{name}", with: name)
            .replacing("{version}", with: String(version))
        return String(raw.lowercased().unicodeScalars.map { scalar -> Character in
            (("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_") ? Character(scalar) : "_"
        })
    }

    /// Creates PostgreSQL settings.
    package init(url: SecretReference, roleTemplate: String = Self.defaultRoleTemplate, tlsMode: String = "require",
                tlsCAFile: String? = nil, reassignOwnedTo: String? = nil) {
        self.url = url
        self.roleTemplate = roleTemplate
        self.tlsMode = tlsMode
        self.tlsCAFile = tlsCAFile
        self.reassignOwnedTo = reassignOwnedTo
    }
}

/// The `postgres` issuer type: login roles of a PostgreSQL server.
package struct PostgresIssuerKind: IssuerKind {
    package let type = "postgres"
    package let section = "postgres"
    package let capabilities: IssuerCapabilities = [.updateInPlace, .inventory, .idempotencyLookup, .overlap, .secretFormats]
    package let fields = ["": ["url", "roleTemplate", "tls", "reassignOwnedTo"], "tls": ["mode", "caFile"]]
    package let schemaName = "PostgresIssuer"
    package let schemaDefinitions = [
        "PostgresIssuer": """
            {"type": "object", "description": "Issues PostgreSQL login roles.", "additionalProperties": false,
             "properties": {
               "url": {"$ref": "#/$defs/SecretReference", "description": "Reference to the admin connection URL, e.g. env:PG_ADMIN_URL."},
               "roleTemplate": {"type": "string", "minLength": 1, "default": "tk_{namespace}_{name}_v{version}",
                                "description": "Role name template; placeholders {namespace}, {name}, {version}."},
               "tls": {"$ref": "#/$defs/PostgresTLS", "description": "TLS settings of the admin connection."},
               "reassignOwnedTo": {"type": "string", "minLength": 1, "description": "Role that receives objects owned by a retired role."}},
             "required": ["url"]}
            """,
        "PostgresTLS": """
            {"type": "object", "description": "TLS settings of the admin connection.", "additionalProperties": false,
             "properties": {
               "mode": {"enum": ["disable", "require", "verify-full"], "default": "require",
                        "description": "disable, require (default) or verify-full (checks certificate and host name)."},
               "caFile": {"type": "string", "minLength": 1, "description": "CA bundle used to verify the server (verify-full)."}}}
            """,
    ]

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard let section else {
            reader.missing("postgres", in: "Issuer spec", at: spec, hint: "; a postgres issuer needs 'postgres: {url: env:PG_ADMIN_URL}'")
            return nil
        }
        guard let fields = reader.mapping(section, display: "Issuer spec.postgres", fields: self.fields[""] ?? []) else {
            if case .null = section {
                reader.missing("url", in: "Issuer spec.postgres", at: section.location, hint: "; refer to the admin connection URL, e.g. env:PG_ADMIN_URL")
            }
            return nil
        }
        let url = fields["url"].flatMap { reader.reference($0.value, field: "postgres.url") }
        let template = fields["roleTemplate"].flatMap { reader.string($0.value, field: "postgres.roleTemplate") }
        let reassign = fields["reassignOwnedTo"].flatMap { reader.string($0.value, field: "postgres.reassignOwnedTo") }
        var tlsMode: Located<String>?
        var caFile: Located<String>?
        if let tls = fields["tls"], let tlsFields = reader.mapping(tls.value, display: "Issuer spec.postgres.tls", fields: self.fields["tls"] ?? []) {
            tlsMode = tlsFields["mode"].flatMap { reader.choice($0.value, field: "tls.mode", among: PostgresSettings.tlsModes) }
            caFile = tlsFields["caFile"].flatMap { reader.string($0.value, field: "tls.caFile") }
        }
        guard let url else {
            reader.missing("url", in: "Issuer spec.postgres", at: section.location, written: fields,
                           hint: "; refer to the admin connection URL, e.g. env:PG_ADMIN_URL")
            return nil
        }
        if let template, !template.value.contains("{version}") {
            reader.error("bad-value", "postgres.roleTemplate must contain {version}, so that a rotation can create the next role beside the old one",
                         at: template.location)
            return nil
        }
        return PostgresSettings(url: url.value, roleTemplate: template?.value ?? PostgresSettings.defaultRoleTemplate,
                                tlsMode: tlsMode?.value ?? "require", tlsCAFile: caFile?.value, reassignOwnedTo: reassign?.value)
    }

    /// Scopes name group roles (`role:NAME`), and no two tokens of one issuer may map to the same role name.
    package func validate(tokens: [Token], issuers: [String: Issuer], into diagnostics: inout [Diagnostic]) {
        var roleNames: [String: TokenID] = [:]
        for token in tokens {
            guard let settings = issuers[token.issuer]?.driver.settings(as: PostgresSettings.self) else { continue }
            let role = token.issuer + "\u{0}" + settings.cleanRoleName(namespace: token.id.namespace, name: token.id.name, version: 1)
            if let other = roleNames[role], other != token.id {
                diagnostics.append(Diagnostic(.error, "duplicate-name", "token \(token.id) and token \(other) would get the same role name on "
                                              + "issuer '\(token.issuer)' (its roleTemplate maps both to the same characters); rename one "
                                              + "of them or change the roleTemplate", at: token.locations.issuer))
            } else {
                roleNames[role] = token.id
            }
            for (scope, location) in zip(token.scopes, token.locations.scopes) where !scope.hasPrefix("role:") || scope.count <= 5 {
                diagnostics.append(Diagnostic(.error, "bad-value", "scope '\(scope)' of a postgres token must name a group role to grant, "
                                              + "as role:NAME (e.g. role:analytics_read)", at: location))
            }
        }
    }

    /// Resolves the admin URL from its reference (never printed) and connects lazily.
    package func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        guard let settings = issuer.driver.settings(as: PostgresSettings.self) else {
            throw DriverSetupError("its settings are not those of a postgres issuer")
        }
        let url = try context.value(of: settings.url, what: "its admin URL")
        do {
            let parallelism = Int(context.environment["TOKENCTL_PG_CONNECTIONS"] ?? "") ?? 4
            return try PostgresIssuer(name: issuer.metadata.name, settings: settings, adminURL: url, parallelism: parallelism,
                                      logger: Logger(label: "tokenctl.issuer.postgres"))
        } catch {
            throw DriverSetupError("its admin URL: \(error.description)")
        }
    }
}
