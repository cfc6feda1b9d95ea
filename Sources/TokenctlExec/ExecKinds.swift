import TokenctlDrivers
import TokenctlModel

/// Settings of an `exec` issuer or store: the program and its time limit.
package struct ExecSettings: DriverSettings {
    /// The program and its arguments, run without a shell.
    package var command: [String]
    /// The time limit of one invocation.
    package var timeout: TokenDuration?

    /// Creates settings.
    package init(command: [String], timeout: TokenDuration?) {
        self.command = command
        self.timeout = timeout
    }

    static let fields = ["": ["command", "timeout"]]
    static let schemaDefinitions = ["Exec": """
        {"type": "object", "description": "An external program speaking tokenctl's protocol on stdin/stdout.", "additionalProperties": false,
         "properties": {
           "command": {"type": "array", "minItems": 1, "items": {"type": "string", "description": "Program or argument."},
                       "description": "Program and arguments, run without a shell."},
           "timeout": {"$ref": "#/$defs/Duration", "description": "Time limit for one invocation, e.g. 30s."}},
         "required": ["command"]}
        """]

    /// Decodes the `exec` section of `object` (`Issuer spec` or `Store spec`).
    static func decode(_ section: ConfigNode?, spec: SourceLocation, object: String, hint: String,
                       reader: inout SettingsReader) -> ExecSettings? {
        guard let section else {
            reader.missing("exec", in: object, at: spec, hint: hint)
            return nil
        }
        let display = object + ".exec"
        guard let fields = reader.mapping(section, display: display, fields: Self.fields[""] ?? []) else { return nil }
        let command = fields["command"].flatMap { reader.stringList($0.value, field: "exec.command") }
        let timeout = fields["timeout"].flatMap { reader.duration($0.value, field: "exec.timeout") }
        guard let command, !command.isEmpty else {
            reader.missing("command", in: display, at: section.location, written: command == nil ? fields : nil,
                           hint: "; give the program and its arguments as a list")
            return nil
        }
        return ExecSettings(command: command.map(\.value), timeout: timeout?.value)
    }
}

/// The `exec` issuer type. Its protocol is not built yet: every change of its tokens fails, saying so.
package struct ExecIssuerKind: IssuerKind {
    package let type = "exec"
    package let section = "exec"
    package let capabilities: IssuerCapabilities = []
    package let fields = ExecSettings.fields
    package let schemaName = "Exec"
    package let schemaDefinitions = ExecSettings.schemaDefinitions

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard let settings = ExecSettings.decode(section, spec: spec, object: "Issuer spec",
                                                 hint: "; an exec issuer needs 'exec: {command: [...]}'", reader: &reader) else { return nil }
        reader.warning("not-implemented", "exec issuers are not implemented yet: apply reports every change of their tokens as "
                       + "failed; use the builtin or postgres issuer until then", at: spec)
        return settings
    }

    package func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        throw DriverSetupError("exec issuers are not implemented yet")
    }
}

/// The `exec` store type. Not built yet: every delivery to it fails, saying so.
package struct ExecStoreKind: StoreKind {
    package let type = "exec"
    package let section = "exec"
    package let capabilities: StoreCapabilities = []
    package let fields = ExecSettings.fields
    package let schemaName = "Exec"
    package let schemaDefinitions = ExecSettings.schemaDefinitions

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard let settings = ExecSettings.decode(section, spec: spec, object: "Store spec", hint: "; add 'exec: {command: [...]}'",
                                                 reader: &reader) else { return nil }
        reader.warning("not-implemented", "exec stores are not implemented yet: apply refuses to run while the manifests name one; "
                       + "use an encrypted-file or dotenv store until then", at: spec)
        return settings
    }

    package func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        throw DriverSetupError("exec stores are not implemented yet")
    }
}
