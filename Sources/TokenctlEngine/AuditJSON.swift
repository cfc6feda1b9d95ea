import Foundation
import TokenctlModel

/// The canonical JSON of an audit entry, written by hand: the same bytes as `JSONEncoder` with sorted keys and unescaped
/// slashes (a test holds the two equal), at a fraction of the cost. An apply seals one entry per change, and the
/// general-purpose encoder was the largest single cost of sealing them.
///
/// ```swift
/// let json = AuditJSON.encode(entry)   // {"action":"issue","actor":"alice",…}
/// ```
package enum AuditJSON {
    /// The entry as canonical JSON: keys in sorted order, absent values left out.
    package static func encode(_ entry: AuditEntry) -> String {
        var writer = Writer()
        writer.bytes.reserveCapacity(512)
        writer.open()
        // The keys in the order JSONEncoder's sorted output gives them.
        writer.field("action", entry.action)
        writer.field("actor", entry.actor)
        if let annotations = entry.annotations { writer.field("annotations", annotations) }
        writer.field("at", entry.at.description)
        writer.field("changeReason", entry.changeReason)
        writer.field("command", entry.command)
        writer.field("detail", entry.detail)
        if let fingerprints = entry.fingerprints { writer.field("fingerprints", fingerprints) }
        writer.field("gitCommit", entry.gitCommit)
        if let dirty = entry.gitDirty { writer.field("gitDirty", raw: dirty ? "true" : "false") }
        writer.field("host", entry.host)
        writer.field("kind", entry.kind)
        writer.field("reason", entry.reason)
        writer.field("requestID", entry.requestID)
        writer.field("result", entry.result)
        writer.field("token", entry.token?.description)
        writer.close()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Key order of a JSON object with sorted keys, as Foundation's encoder sorts them: by their UTF-8 bytes.
    static func sortedKeys(_ keys: some Sequence<String>) -> [String] {
        keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    private struct Writer {
        var bytes: [UInt8] = []
        private var needsComma = false

        mutating func open() { bytes.append(UInt8(ascii: "{")) }
        mutating func close() { bytes.append(UInt8(ascii: "}")) }

        private mutating func key(_ key: StaticString) {
            if needsComma { bytes.append(UInt8(ascii: ",")) }
            needsComma = true
            bytes.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }

        mutating func field(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            key(name)
            string(value)
        }

        mutating func field(_ name: StaticString, raw value: StaticString) {
            key(name)
            value.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }

        mutating func field(_ name: StaticString, _ values: [String]) {
            key(name)
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                string(value)
            }
            bytes.append(UInt8(ascii: "]"))
        }

        mutating func field(_ name: StaticString, _ values: [String: String]) {
            key(name)
            bytes.append(UInt8(ascii: "{"))
            for (index, key) in AuditJSON.sortedKeys(values.keys).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                string(key)
                bytes.append(UInt8(ascii: ":"))
                string(values[key] ?? "")
            }
            bytes.append(UInt8(ascii: "}"))
        }

        private static let hexDigits = Array("0123456789abcdef".utf8)

        mutating func string(_ value: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                case 0..<0x20:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hexDigits[Int(byte >> 4)], Self.hexDigits[Int(byte & 0xF)]])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
