import Foundation
import TokenctlDrivers
import TokenctlModel

/// Settings of an `exec` issuer or store: the program, its time limit, and what it is given.
package struct ExecSettings: DriverSettings {
    /// The program and its arguments, run without a shell; a relative program path is taken from the manifest's directory.
    package var command: [String]
    /// The time limit of one run (30 s when not given).
    package var timeout: TokenDuration?
    /// `exec.config`, passed to an issuer plugin as written.
    package var config: JSONValue
    /// `exec.secrets`: references resolved when the driver opens, passed on stdin only.
    package var secrets: [String: SecretReference]
    /// Variables of tokenctl's environment the program also gets (it gets PATH, HOME, LANG, LC_ALL, TMPDIR and USER
    /// anyway); never one whose name says it holds a credential.
    package var environment: [String]
    /// For a store: whether the helper answers `get` (false makes it write-only).
    package var readable: Bool
    /// The plugin's handshake answer, for an issuer (asked when the manifests are loaded).
    package var handshake: PluginProtocol.Capabilities?

    /// Creates settings.
    package init(command: [String], timeout: TokenDuration? = nil, config: JSONValue = .object([:]), secrets: [String: SecretReference] = [:],
                 environment: [String] = [], readable: Bool = true, handshake: PluginProtocol.Capabilities? = nil) {
        self.command = command
        self.timeout = timeout
        self.config = config
        self.secrets = secrets
        self.environment = environment
        self.readable = readable
        self.handshake = handshake
    }

    /// Seconds a run may take.
    package var timeoutSeconds: Double { Double(timeout?.seconds ?? 30) }

    /// The runner for one run, with the environment a plugin gets: never tokenctl's own secrets.
    func process(context: [String: String]) -> PluginProcess {
        var variables: [String: String] = [:]
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"] + environment {
            if let value = context[name] { variables[name] = value }
        }
        return PluginProcess(command: command, timeout: timeoutSeconds, environment: variables)
    }

    static let issuerFields = ["": ["command", "timeout", "config", "secrets", "environment"]]
    static let storeFields = ["": ["command", "timeout", "environment", "readable"]]
    static let schemaDefinitions = [
        "Exec": """
        {"type": "object", "description": "An external program speaking tokenctl's plugin protocol tokenctl.io/plugin/v1 on stdin/stdout.",
         "additionalProperties": false,
         "properties": {
           "command": {"type": "array", "minItems": 1, "items": {"type": "string", "description": "Program or argument."},
                       "description": "Program and arguments, run without a shell; a relative path is taken from the manifest's directory."},
           "timeout": {"$ref": "#/$defs/Duration", "description": "Time limit for one run, e.g. 30s (the default)."},
           "config": {"type": "object", "description": "Passed to the plugin as written (never a secret: use secrets)."},
           "secrets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/SecretReference"},
                       "description": "Secret references resolved by tokenctl and passed to the plugin on stdin."},
           "environment": {"$ref": "#/$defs/EnvironmentNames"}},
         "required": ["command"]}
        """,
        "ExecStore": """
        {"type": "object", "description": "A Docker credential helper (docker-credential-*), run as PROGRAM store|get|erase|list.",
         "additionalProperties": false,
         "properties": {
           "command": {"type": "array", "minItems": 1, "items": {"type": "string", "description": "Program or argument."},
                       "description": "The helper and arguments before the action, run without a shell."},
           "timeout": {"$ref": "#/$defs/Duration", "description": "Time limit for one run, e.g. 30s (the default)."},
           "environment": {"$ref": "#/$defs/EnvironmentNames"},
           "readable": {"type": "boolean", "description": "Whether the helper answers get (default true); false makes the store write-only."}},
         "required": ["command"]}
        """,
        "EnvironmentNames": """
        {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "A variable name."},
         "description": "Variables of tokenctl's environment the program also gets (PATH, HOME, LANG, LC_ALL, TMPDIR, USER always); never one named like a credential."}
        """,
    ]

    /// Decodes the `exec` section of `object` (`Issuer spec` or `Store spec`).
    static func decode(_ section: ConfigNode?, spec: SourceLocation, object: String, fields: [String], hint: String,
                       reader: inout SettingsReader) -> ExecSettings? {
        guard let section else {
            reader.missing("exec", in: object, at: spec, hint: hint)
            return nil
        }
        let display = object + ".exec"
        guard let entries = reader.mapping(section, display: display, fields: fields) else { return nil }
        let command = entries["command"].flatMap { reader.stringList($0.value, field: "exec.command") }
        let timeout = entries["timeout"].flatMap { reader.duration($0.value, field: "exec.timeout") }
        let environment = entries["environment"].flatMap { reader.stringList($0.value, field: "exec.environment") } ?? []
        let credentialNamed = environment.filter { PassedEnvironment.holdsCredential($0.value) }
        for variable in credentialNamed {
            reader.error("secret-in-environment", "exec.environment would pass \(variable.value) to the plugin, and its name says it holds "
                         + "tokenctl's key or a credential; secrets reach a plugin only on stdin: write it under exec.secrets "
                         + "(e.g. adminPassword: env:\(variable.value))", at: variable.location)
        }
        var secrets: [String: SecretReference] = [:]
        if let node = entries["secrets"]?.value {
            guard case .mapping(let references, _) = node else {
                reader.error("bad-type", "\(display).secrets must be a mapping of names to references such as env:REDIS_PASSWORD, "
                             + "not \(node.kindDescription)", at: node.location)
                return nil
            }
            for entry in references {
                if let reference = reader.reference(entry.value, field: "exec.secrets.\(entry.key)") { secrets[entry.key] = reference.value }
            }
        }
        let readable = entries["readable"].flatMap { reader.choice($0.value, field: "exec.readable", among: ["true", "false"]) }
        guard credentialNamed.isEmpty else { return nil }
        guard let command, let program = command.first else {
            reader.missing("command", in: display, at: section.location, written: command == nil ? entries : nil,
                           hint: "; give the program and its arguments as a list")
            return nil
        }
        guard let resolved = ProgramPath.resolve(program.value, manifest: program.location.file) else {
            reader.error("plugin-missing", "\(object.hasPrefix("Issuer") ? "the issuer's" : "the store's") program '\(program.value)' is "
                         + "not an executable file (looked \(program.value.contains("/") ? "next to the manifest" : "in PATH")); "
                         + "install it or fix exec.command", at: program.location)
            return nil
        }
        return ExecSettings(command: [resolved] + command.dropFirst().map(\.value), timeout: timeout?.value,
                            config: entries["config"].map { JSONValue($0.value) } ?? .object([:]), secrets: secrets,
                            environment: environment.map(\.value), readable: readable?.value != "false")
    }
}

extension JSONValue {
    /// The value as written in the manifest (scalars stay text; the decoder has already refused literal secrets).
    init(_ node: ConfigNode) {
        switch node {
        case .scalar(let text, _): self = .string(text)
        case .null, .withheld: self = .null
        case .sequence(let items, _): self = .array(items.map(JSONValue.init))
        case .mapping(let entries, _): self = .object(Dictionary(entries.map { ($0.key, JSONValue($0.value)) }, uniquingKeysWith: { $1 }))
        }
    }
}

/// Which of tokenctl's environment variables may be handed to a plugin.
enum PassedEnvironment {
    /// Whether a variable's name says it holds tokenctl's own key or a credential (`TOKENCTL_MASTER_KEY`,
    /// `AWS_SECRET_ACCESS_KEY`, `GITHUB_TOKEN`); a directory, file or path setting (`PASSWORD_STORE_DIR`) does not.
    static func holdsCredential(_ name: String) -> Bool {
        let upper = name.uppercased()
        if upper.hasPrefix("TOKENCTL_") { return true }
        if ["_DIR", "_FILE", "_PATH", "_HOME"].contains(where: upper.hasSuffix) { return false }
        return ["SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "API_KEY", "ACCESS_KEY", "AUTH"].contains(where: upper.contains)
            || upper.hasSuffix("_KEY") || upper.hasSuffix("_PAT")
    }
}

/// Where a plugin's program is.
enum ProgramPath {
    /// An absolute path to an executable file: a path with a slash is taken from the manifest's directory, a bare name
    /// from PATH; nil when there is no such executable.
    static func resolve(_ program: String, manifest: String) -> String? {
        let candidates: [String]
        if program.hasPrefix("/") {
            candidates = [program]
        } else if program.contains("/") {
            let directory = (manifest as NSString).deletingLastPathComponent
            let base = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
            candidates = [(base as NSString).appendingPathComponent(program)]
        } else {
            candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(program)" }
        }
        return candidates.lazy.map { ($0 as NSString).standardizingPath }.first { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
                && FileManager.default.isExecutableFile(atPath: path)
        }
    }
}
