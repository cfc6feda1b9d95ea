import Foundation
import TestSupport
import Testing
import TokenctlManifest
import TokenctlModel
import TokenctlStandardDrivers

/// Feeds thousands of random mutations of the reference manifests to the decoder: it must never
/// crash, and every diagnostic must point inside the file it names.
@Suite struct MutationTests {

    static let fragments: [[UInt8]] = [
        "---\n", ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "*b", "!!str ", "? ", "|\n", ">-\n", "\"", "'", "#", "\t", "\n  ",
        "never", "0s", "-1d", "99999999999999999999d", "env:", "file:", "ghp_0123456789abcdefghijABCDEFGHIJ", "\u{FEFF}", "é", "~",
        "<<: *a\n", "%YAML 1.1\n", "...\n",
    ].map { Array($0.utf8) }

    static func mutate(_ source: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = source
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { break }
            let position = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: bytes.remove(at: position)
            case 1: bytes.insert(contentsOf: fragments.randomElement(using: &random) ?? [], at: position)
            case 2: bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 3:
                let end = min(bytes.count, position + Int.random(in: 1...40, using: &random))
                bytes.removeSubrange(position..<end)
            default:
                let end = min(bytes.count, position + Int.random(in: 1...60, using: &random))
                let slice = Array(bytes[position..<end])
                bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &random))
            }
        }
        return bytes
    }

    static func referenceFiles() throws -> [[UInt8]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("Manifests/reference").path
        let enumerator = try #require(FileManager.default.enumerator(atPath: directory))
        var files: [[UInt8]] = []
        while let name = enumerator.nextObject() as? String {
            guard name.hasSuffix(".yaml") else { continue }
            files.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))))
        }
        return files
    }

    @Test func thousandsOfMutationsNeverCrash() throws {
        let sources = try Self.referenceFiles()
        try #require(sources.count >= 3)
        var random = SplitMix64(seed: 0x70_6B_65_6E)
        let loader = ManifestLoader(registry: .standard)
        var withErrors = 0
        for round in 0..<3_000 {
            let source = sources[round % sources.count]
            let mutated = Self.mutate(source, using: &random)
            let lineCount = mutated.split(separator: 10, omittingEmptySubsequences: false).count
            let (_, diagnostics) = mutated.withUnsafeBufferPointer { loader.decode(bytes: $0, file: "mutant-\(round).yaml") }
            if !diagnostics.isEmpty { withErrors += 1 }
            for diagnostic in diagnostics {
                let location = try #require(diagnostic.location)
                #expect(location.line >= 1 && location.line <= lineCount + 1, "round \(round): \(diagnostic.message)")
                #expect(location.column >= 1)
                #expect(!diagnostic.message.isEmpty)
            }
        }
        // Most mutations break something; a mutator that changed nothing would make this test vacuous.
        #expect(withErrors > 1_500)
    }
}
