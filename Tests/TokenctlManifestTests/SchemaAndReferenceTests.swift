import Foundation
import Testing
@testable import TokenctlManifest
import TokenctlModel

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

    @Test(arguments: ManifestFields.table.keys.sorted())
    func schemaAndDecoderAgreeOnFields(_ path: String) throws {
        let schema = try Self.schema()
        let decoderFields = Set(try #require(ManifestFields.table[path]))
        if path == "document" {
            for kind in ManifestFields.kinds {
                #expect(try Self.properties(of: kind, in: schema) == decoderFields, "\(kind)")
            }
        } else {
            #expect(try Self.properties(of: path, in: schema) == decoderFields, "\(path)")
        }
    }

    @Test func schemaNamesEveryKind() throws {
        let schema = try Self.schema()
        let kinds = try #require((schema["properties"] as? [String: Any])?["kind"] as? [String: Any])
        #expect(Set(kinds["enum"] as? [String] ?? []) == Set(ManifestFields.kinds))
    }

    @Test func referenceSetIsValid() {
        let result = ManifestLoader().load(paths: [packageRoot.appendingPathComponent("Manifests/reference").path], now: Fixture.now)
        // The reference set shows every type, so it includes the exec issuer and store, which warn that they are not built.
        let notBuilt = result.diagnostics.filter { $0.code == "not-implemented" }
        #expect(notBuilt.count == 2 && notBuilt.allSatisfy { $0.severity == .warning && $0.message.contains("not implemented yet") })
        #expect(result.diagnostics.count == notBuilt.count, "\(result.diagnostics.map { "\($0.location?.description ?? "-") \($0.message)" })")
        #expect(result.manifests.tokens.count >= 5)
        #expect(Set(result.manifests.issuers.values.map(\.kind.typeName)) == Set(ManifestFields.issuerTypes))
        #expect(Set(result.manifests.stores.values.map(\.kind.typeName)) == Set(ManifestFields.storeTypes))
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
        let result = ManifestLoader().load(paths: [packageRoot.appendingPathComponent("Examples/quickstart").path], now: Fixture.now)
        #expect(!result.hasErrors && !result.hasPolicyViolations, "\(result.diagnostics.map(\.message))")
        #expect(result.manifests.tokens.count >= 3)
    }
}
