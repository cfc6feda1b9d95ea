import Crypto
import Foundation
import TokenctlDrivers
import TokenctlModel

/// Settings of an `encrypted-file` store.
public struct EncryptedFileSettings: KeyedFileSettings {
    /// The file, relative to the manifest that defines the store.
    public var path: String
    /// The key it is encrypted with.
    public var key: SecretReference

    /// Creates settings.
    public init(path: String, key: SecretReference) {
        self.path = path
        self.key = key
    }
}

/// Settings of a `dotenv` store.
public struct DotenvSettings: DriverSettings {
    /// The file, relative to the manifest that defines the store.
    public var path: String

    /// Creates settings.
    public init(path: String) {
        self.path = path
    }
}

/// The `encrypted-file` store type: an AES-GCM encrypted file.
public struct EncryptedFileStoreKind: StoreKind {
    public let type = "encrypted-file"
    public let section = "encryptedFile"
    public let capabilities: StoreCapabilities = [.readable]
    public let fields = ["": ["path", "key"]]
    public let schemaName = "EncryptedFile"
    public let schemaDefinitions = ["EncryptedFile": """
        {"type": "object", "description": "An AES-GCM encrypted file of secrets.", "additionalProperties": false,
         "properties": {
           "path": {"type": "string", "minLength": 1, "description": "File path, relative to the manifest's directory."},
           "key": {"$ref": "#/$defs/SecretReference", "description": "Reference to the encryption key, e.g. env:TOKENCTL_MASTER_KEY."}},
         "required": ["path", "key"]}
        """]

    /// Creates the kind.
    public init() {}

    public func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard let section else {
            reader.missing("encryptedFile", in: "Store spec", at: spec, hint: "; add 'encryptedFile: {path: …, key: env:…}'")
            return nil
        }
        guard let fields = reader.mapping(section, display: "Store spec.encryptedFile", fields: self.fields[""] ?? []) else { return nil }
        let path = fields["path"].flatMap { reader.string($0.value, field: "encryptedFile.path") }
        let key = fields["key"].flatMap { reader.reference($0.value, field: "encryptedFile.key") }
        if path == nil { reader.missing("path", in: "Store spec.encryptedFile", at: section.location, written: fields, hint: "; name the file to write") }
        if key == nil {
            reader.missing("key", in: "Store spec.encryptedFile", at: section.location, written: fields,
                           hint: "; refer to the encryption key, e.g. env:TOKENCTL_MASTER_KEY")
        }
        guard let path, let key else { return nil }
        return EncryptedFileSettings(path: path.value, key: key.value)
    }

    /// Opens the file with its key; a missing generated master key is made only for a file that does not exist yet.
    public func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        guard let settings = store.driver.settings(as: EncryptedFileSettings.self) else {
            throw DriverSetupError("its settings are not those of an encrypted-file store")
        }
        let file = store.resolve(settings.path)
        // A store that already exists was written with some key: a new one would only fail to open it.
        let existing = FileManager.default.fileExists(atPath: file) ? file : nil
        do {
            let key = try context.resolveKey(settings.key, existing)
            return EncryptedFileStore(path: file, key: SymmetricKey(data: key), keyReference: settings.key.description)
        } catch {
            throw DriverSetupError(error.description)
        }
    }
}

/// The `dotenv` store type: a `NAME=value` file.
public struct DotenvStoreKind: StoreKind {
    public let type = "dotenv"
    public let section = "dotenv"
    public let capabilities: StoreCapabilities = [.readable]
    public let fields = ["": ["path"]]
    public let schemaName = "Dotenv"
    public let schemaDefinitions = ["Dotenv": """
        {"type": "object", "description": "A KEY=value environment file (mode 0600).", "additionalProperties": false,
         "properties": {"path": {"type": "string", "minLength": 1, "description": "File path, relative to the manifest's directory."}},
         "required": ["path"]}
        """]

    /// Creates the kind.
    public init() {}

    public func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        guard let section else {
            reader.missing("dotenv", in: "Store spec", at: spec, hint: "; add 'dotenv: {path: …}'")
            return nil
        }
        guard let fields = reader.mapping(section, display: "Store spec.dotenv", fields: self.fields[""] ?? []) else { return nil }
        guard let path = fields["path"].flatMap({ reader.string($0.value, field: "dotenv.path") }) else {
            reader.missing("path", in: "Store spec.dotenv", at: section.location, written: fields, hint: "; name the file to write")
            return nil
        }
        return DotenvSettings(path: path.value)
    }

    /// Keys become variable names, so different keys can share one.
    public func entry(forKey key: String, settings: any DriverSettings) -> String {
        DotenvStore.variableName(key)
    }

    public func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        guard let settings = store.driver.settings(as: DotenvSettings.self) else {
            throw DriverSetupError("its settings are not those of a dotenv store")
        }
        return DotenvStore(path: store.resolve(settings.path))
    }
}
