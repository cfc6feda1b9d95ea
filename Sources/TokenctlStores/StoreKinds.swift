import Crypto
import Foundation
import TokenctlDrivers
import TokenctlModel

/// Settings of an `encrypted-file` store.
package struct EncryptedFileSettings: KeyedFileSettings {
    /// The file, relative to the manifest that defines the store.
    package var path: String
    /// The key it is encrypted with.
    package var key: SecretReference

    /// Creates settings.
    package init(path: String, key: SecretReference) {
        self.path = path
        self.key = key
    }
}

/// Settings of a `dotenv` store.
package struct DotenvSettings: DriverSettings {
    /// The file, relative to the manifest that defines the store.
    package var path: String

    /// Creates settings.
    package init(path: String) {
        self.path = path
    }
}

/// The `encrypted-file` store type: an AES-GCM encrypted file.
package struct EncryptedFileStoreKind: StoreKind {
    package let type = "encrypted-file"
    package let section = "encryptedFile"
    package let capabilities: StoreCapabilities = [.readable]
    package let fields = ["": ["path", "key"]]
    package let schemaName = "EncryptedFile"
    package let schemaDefinitions = ["EncryptedFile": """
        {"type": "object", "description": "An AES-GCM encrypted file of secrets.", "additionalProperties": false,
         "properties": {
           "path": {"type": "string", "minLength": 1, "description": "File path, relative to the manifest's directory."},
           "key": {"$ref": "#/$defs/SecretReference", "description": "Reference to the encryption key, e.g. env:TOKENCTL_MASTER_KEY."}},
         "required": ["path", "key"]}
        """]

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
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
    package func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
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
package struct DotenvStoreKind: StoreKind {
    package let type = "dotenv"
    package let section = "dotenv"
    package let capabilities: StoreCapabilities = [.readable]
    package let fields = ["": ["path"]]
    package let schemaName = "Dotenv"
    package let schemaDefinitions = ["Dotenv": """
        {"type": "object", "description": "A KEY=value environment file (mode 0600).", "additionalProperties": false,
         "properties": {"path": {"type": "string", "minLength": 1, "description": "File path, relative to the manifest's directory."}},
         "required": ["path"]}
        """]

    /// Creates the kind.
    package init() {}

    package func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
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
    package func entry(forKey key: String, settings: any DriverSettings) -> String {
        DotenvStore.variableName(key)
    }

    package func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        guard let settings = store.driver.settings(as: DotenvSettings.self) else {
            throw DriverSetupError("its settings are not those of a dotenv store")
        }
        return DotenvStore(path: store.resolve(settings.path))
    }
}
