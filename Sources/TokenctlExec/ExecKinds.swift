import Foundation
import TokenctlDrivers
import TokenctlModel

/// The `exec` issuer type: a plugin program speaking `tokenctl.io/plugin/v1` (see `docs/plugins.md`). Its capabilities
/// are the plugin's own, asked in a handshake when the manifests load, so a missing plugin or one speaking another
/// version is an error of `validate` and `plan`, with the line of its `command`.
package struct ExecIssuerKind: IssuerKind {
    package let type = "exec"
    package let section = "exec"
    package let capabilities: IssuerCapabilities = []
    package let fields = ExecSettings.issuerFields
    package let schemaName = "Exec"
    package let schemaDefinitions = ExecSettings.schemaDefinitions.filter { $0.key != "ExecStore" }

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard var settings = ExecSettings.decode(section, spec: spec, object: "Issuer spec", fields: fields[""] ?? [],
                                                 hint: "; an exec issuer needs 'exec: {command: [...]}'", reader: &reader) else { return nil }
        do {
            settings.handshake = try Handshake.ask(settings)
        } catch {
            reader.error("plugin-handshake", "\(error)", at: section?.location ?? spec)
            return nil
        }
        return settings
    }

    package func capabilities(of settings: any DriverSettings) -> IssuerCapabilities {
        guard let handshake = (settings as? ExecSettings)?.handshake else { return [] }
        let operations = Set(handshake.operations)
        var capabilities: IssuerCapabilities = []
        if handshake.updateInPlace == true && operations.contains("update") { capabilities.insert(.updateInPlace) }
        if handshake.overlap == true { capabilities.insert(.overlap) }
        if operations.contains("list") { capabilities.insert(.inventory) }
        if operations.contains("lookup") { capabilities.insert(.idempotencyLookup) }
        return capabilities
    }

    package func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        guard let settings = issuer.driver.settings(as: ExecSettings.self) else { throw DriverSetupError("issuer '\(issuer.metadata.name)' is not an exec issuer") }
        var secrets: [String: String] = [:]
        for (name, reference) in settings.secrets {
            secrets[name] = try context.value(of: reference, what: "exec.secrets.\(name) of issuer '\(issuer.metadata.name)'")
        }
        return ExecIssuer(name: issuer.metadata.name, settings: settings, secrets: secrets, environment: context.environment)
    }
}

/// The `exec` store type: a Docker credential helper (`docker-credential-*`).
package struct ExecStoreKind: StoreKind {
    package let type = "exec"
    package let section = "exec"
    package let capabilities: StoreCapabilities = [.readable]
    package let fields = ExecSettings.storeFields
    package let schemaName = "ExecStore"
    package let schemaDefinitions = ExecSettings.schemaDefinitions.filter { $0.key != "Exec" }

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        ExecSettings.decode(section, spec: spec, object: "Store spec", fields: fields[""] ?? [],
                            hint: "; add 'exec: {command: [docker-credential-pass]}'", reader: &reader)
    }

    package func capabilities(of settings: any DriverSettings) -> StoreCapabilities {
        (settings as? ExecSettings)?.readable == false ? [] : [.readable]
    }

    package func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        guard let settings = store.driver.settings(as: ExecSettings.self) else { throw DriverSetupError("store '\(store.metadata.name)' is not an exec store") }
        let helper = CredentialHelperStore(name: store.metadata.name, settings: settings, environment: context.environment)
        return settings.readable ? ReadableCredentialHelperStore(helper) : helper
    }
}

/// The capabilities handshake, made when the manifests load.
enum Handshake {
    /// Asks the plugin what it offers; the error says what is wrong with its answer.
    static func ask(_ settings: ExecSettings) throws(PluginFailure) -> PluginProtocol.Capabilities {
        let program = settings.command.first ?? ""
        func failure(_ detail: String) -> PluginFailure { PluginFailure(plugin: program, detail) }
        let request = PluginProtocol.Request(operation: .capabilities, issuer: nil, config: settings.config, secrets: [:])
        guard let input = try? JSONEncoder().encode(request) else { throw failure("could not be sent its handshake") }
        let output: PluginProcess.Output
        switch settings.process(context: ProcessInfo.processInfo.environment).runBlocking(input: Array(input)) {
        case .failure(let error): throw failure("failed its capabilities handshake: \(error)")
        case .success(let result): output = result
        }
        // What the plugin said is masked against the values it was handed through `exec.environment` too.
        let forwarded = settings.environment.compactMap { ProcessInfo.processInfo.environment[$0] }.filter { $0.count >= 4 }
        var capabilities = try PluginProtocol.response(output, to: "its capabilities handshake", as: PluginProtocol.Capabilities.self,
                                                       hiding: forwarded, failure: failure)
        // Operations of a later minor version are left out, not refused: a newer plugin still serves this tokenctl.
        capabilities.operations = capabilities.operations.filter { PluginProtocol.Operation(rawValue: $0) != nil }
        guard capabilities.operations.contains("issue"), capabilities.operations.contains("revoke") else {
            throw failure("must offer at least issue and revoke (it offers \(capabilities.operations))")
        }
        return capabilities
    }
}
