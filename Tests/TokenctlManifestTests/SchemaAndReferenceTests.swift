import Foundation
import Testing
import TokenctlDrivers
@testable import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `Manifests/tokenctl.schema.json` and the decoder agree, and the shipped manifests are valid.
@Suite struct SchemaAndReferenceTests {
    static func schema() throws -> [String: Any] {
        let data = try Data(contentsOf: packageRoot.appendingPathComponent("Manifests/tokenctl.schema.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Follows `$ref`s from a kind's document schema along a path such as `spec.rotation` or `spec.deliverTo[]`.
    static func properties(of path: String, in schema: [String: Any]) throws -> Set<String> {
        let defs = try #require(schema["$defs"] as? [String: Any])
        func resolve(_ node: [String: Any]) throws -> [String: Any] {
            guard let ref = node["$ref"] as? String else { return node }
            let name = try #require(ref.split(separator: "/").last.map(String.init))
            return try resolve(try #require(defs[name] as? [String: Any], "no $defs/\(name)"))
        }
        var parts = path.split(separator: ".").map(String.init)
        let kind = parts.removeFirst()
        var node = try resolve(try #require(defs[kind] as? [String: Any], "no $defs/\(kind)"))
        for part in parts {
            let isList = part.hasSuffix("[]")
            let name = isList ? String(part.dropLast(2)) : part
            let properties = try #require(node["properties"] as? [String: Any], "no properties at \(name) in \(path)")
            node = try resolve(try #require(properties[name] as? [String: Any], "schema has no field \(name) in \(path)"))
            if isList { node = try resolve(try #require(node["items"] as? [String: Any])) }
        }
        let properties = try #require(node["properties"] as? [String: Any], "no properties for \(path)")
        return Set(properties.keys)
    }

    static let fieldTable = ManifestFields.table(with: .standard)

    @Test(arguments: fieldTable.keys.sorted())
    func schemaAndDecoderAgreeOnFields(_ path: String) throws {
        let schema = try Self.schema()
        let decoderFields = Set(try #require(Self.fieldTable[path]))
        if path == "document" {
            for kind in ManifestFields.kinds {
                #expect(try Self.properties(of: kind, in: schema) == decoderFields, "\(kind)")
            }
        } else {
            #expect(try Self.properties(of: path, in: schema) == decoderFields, "\(path)")
        }
    }

    /// Each issuer and store type owns its part of the schema: the file's `$defs` entries are the drivers' own, the
    /// `type` enums list the registered types, and each settings section refers to its driver's definition.
    @Test func schemaPartsComeFromTheDrivers() throws {
        let schema = try Self.schema()
        let defs = try #require(schema["$defs"] as? [String: Any])
        let registry = DriverRegistry.standard
        let parts: [(spec: String, types: [String], sections: [(section: String, name: String, definitions: [String: String])])] = [
            ("IssuerSpec", registry.issuerTypes, registry.issuerKinds.map { ($0.section, $0.schemaName, $0.schemaDefinitions) }),
            ("StoreSpec", registry.storeTypes, registry.storeKinds.map { ($0.section, $0.schemaName, $0.schemaDefinitions) }),
        ]
        for part in parts {
            let spec = try #require(defs[part.spec] as? [String: Any])
            let properties = try #require(spec["properties"] as? [String: Any])
            let type = try #require(properties["type"] as? [String: Any])
            #expect(type["enum"] as? [String] == part.types, "\(part.spec).type")
            for kind in part.sections {
                let section = try #require(properties[kind.section] as? [String: Any], "\(part.spec) has no \(kind.section)")
                #expect(section["$ref"] as? String == "#/$defs/\(kind.name)")
                #expect(kind.definitions[kind.name] != nil, "\(kind.section) does not define \(kind.name)")
                for (name, text) in kind.definitions {
                    let own = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
                    let inFile = defs[name] as? NSDictionary
                    #expect(own != nil && own == inFile,
                            "$defs/\(name) in Manifests/tokenctl.schema.json differs from the \(kind.section) driver's; put this there: \(text)")
                }
            }
        }
    }

    @Test func schemaNamesEveryKind() throws {
        let schema = try Self.schema()
        let kinds = try #require((schema["properties"] as? [String: Any])?["kind"] as? [String: Any])
        #expect(Set(kinds["enum"] as? [String] ?? []) == Set(ManifestFields.kinds))
    }

    @Test func referenceSetIsValid() {
        let result = ManifestLoader(registry: .standard).load(paths: [packageRoot.appendingPathComponent("Manifests/reference").path], now: Fixture.now)
        // The reference set shows every type: its exec issuer is the Redis reference plugin (the handshake runs it) and
        // its exec store docker-credential-pass, which .ci/run installs.
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map { "\($0.location?.description ?? "-") \($0.message)" })")
        #expect(result.manifests.tokens.count >= 5)
        #expect(Set(result.manifests.issuers.values.map(\.driver.type)) == Set(DriverRegistry.standard.issuerTypes))
        #expect(Set(result.manifests.stores.values.map(\.driver.type)) == Set(DriverRegistry.standard.storeTypes))
    }

    /// Every field of the format is used somewhere in the reference set, so it documents all of them.
    @Test func referenceSetUsesEveryField() throws {
        let directory = packageRoot.appendingPathComponent("Manifests/reference").path
        var text = ""
        let enumerator = try #require(FileManager.default.enumerator(atPath: directory))
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".yaml") else { continue }
            text += try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
        }
        for field in Set(ManifestFields.table.values.joined()) {
            #expect(text.contains("\(field):"), "reference manifests never use '\(field)'")
        }
    }

    @Test func quickstartIsValid() {
        let result = ManifestLoader(registry: .standard).load(paths: [packageRoot.appendingPathComponent("Examples/quickstart").path], now: Fixture.now)
        #expect(!result.hasErrors && !result.hasPolicyViolations, "\(result.diagnostics.map(\.message))")
        #expect(result.manifests.tokens.count >= 3)
    }
}
