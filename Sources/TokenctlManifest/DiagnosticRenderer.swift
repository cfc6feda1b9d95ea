import Foundation
import TokenctlModel

/// Renders diagnostics as `file:line:col: error: message` with the source line and a caret, or as JSON.
///
/// ```swift
/// let text = DiagnosticRenderer(colors: false).render(result.diagnostics)
/// ```
package struct DiagnosticRenderer {
    /// Whether to use ANSI colours (only on a terminal, never with NO_COLOR).
    package var colors: Bool
    private var sourceCache: [String: [UInt8]] = [:]
    /// Where each line starts, per file: found once, so that many diagnostics in one file cost linear time.
    private var lineStarts: [String: [Int]] = [:]

    /// The most diagnostics shown in one run; the rest are counted in a closing line (the summary still counts all).
    package static let maxShown = 1_000

    /// Creates a renderer.
    package init(colors: Bool) { self.colors = colors }

    /// The human rendering of every diagnostic, in order.
    package mutating func render(_ diagnostics: [Diagnostic]) -> String {
        var output = ""
        for diagnostic in diagnostics.prefix(Self.maxShown) {
            output += render(diagnostic)
        }
        if diagnostics.count > Self.maxShown {
            output += "tokenctl: … and \(diagnostics.count - Self.maxShown) more diagnostics not shown; fix the ones above first\n"
        }
        return output
    }

    /// One diagnostic: the heading line, then the source line and a caret when the file can be read.
    package mutating func render(_ diagnostic: Diagnostic) -> String {
        let label: String
        switch diagnostic.severity {
        case .error: label = paint("error:", "1;31")
        case .policy: label = paint("error:", "1;31") + " " + paint("policy violation:", "1;35")
        case .warning: label = paint("warning:", "1;33")
        }
        guard let location = diagnostic.location else {
            return "tokenctl: \(label) \(diagnostic.message)\n"
        }
        var text = paint("\(location):", "1") + " \(label) \(diagnostic.message)\n"
        guard let line = sourceLine(location.file, location.line) else { return text }
        if let finding = SecretScanner.lineFinding(line) {
            // Not even redacted: a line the scanner flags may hold a secret the scanner cannot see whole.
            text += "  (source line not shown: it holds \(finding))\n"
        } else {
            // Keep tabs so the caret lines up under the same column in any terminal.
            let prefix = line.unicodeScalars.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" : " " }.joined()
            text += "\(line)\n\(prefix)\(paint("^", "1;32"))\n"
        }
        return text
    }

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private mutating func sourceLine(_ file: String, _ line: Int) -> String? {
        if sourceCache[file] == nil {
            // The same reader as decoding: regular files only, bounded; links were vetted when the files were found.
            guard case .success(var bytes) = ManifestFileReader.read(file, limit: DecodingLimits().maxFileBytes),
                  !bytes.withUnsafeBufferPointer({ $0.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? true })
            else { return nil }
            if FileContents.hasByteOrderMark(bytes) { bytes.removeFirst(3) }
            sourceCache[file] = bytes
        }
        guard let bytes = sourceCache[file], line >= 1 else { return nil }
        if lineStarts[file] == nil {
            var starts = [0]
            bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                var index = 0
                while index < buffer.count, let found = memchr(base + index, 10, buffer.count - index) {
                    index = base.distance(to: found.assumingMemoryBound(to: UInt8.self)) + 1
                    starts.append(index)
                }
            }
            lineStarts[file] = starts
        }
        guard let starts = lineStarts[file], line <= starts.count else { return nil }
        let start = starts[line - 1]
        return bytes.withUnsafeBufferPointer { buffer -> String? in
            guard start <= buffer.count else { return nil }
            // Very long lines (a huge scalar) are cut to 400 bytes, the caret's column being what matters; the cut line is
            // judged with 1 KiB past it, so that a secret straddling the cut is seen whole.
            let judged = min(buffer.count, start + 1_424)
            var end = start
            while end < judged, buffer[end] != 10, buffer[end] != 13 { end += 1 }
            let line = String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)
            if end - start <= 400 || SecretScanner.lineFinding(line) != nil { return line }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<start + 400]), as: UTF8.self)
        }
    }

    /// The JSON rendering (`--json`), format version 1, documented in docs/json-output.md.
    package static func json(_ result: ManifestLoadResult) -> String {
        let summary = DiagnosticSummary(result.diagnostics)
        var items: [[String: Any]] = []
        for diagnostic in result.diagnostics.prefix(maxShown) {
            var item: [String: Any] = ["severity": diagnostic.severity.rawValue, "code": diagnostic.code, "message": diagnostic.message]
            if let location = diagnostic.location {
                item["file"] = location.file
                item["line"] = location.line
                item["column"] = location.column
            }
            items.append(item)
        }
        let object: [String: Any] = [
            "formatVersion": 1,
            "valid": !result.hasErrors && !result.hasPolicyViolations,
            "files": result.files.count,
            "documents": result.documents,
            "resources": [
                "tokens": result.manifests.tokens.count, "issuers": result.manifests.issuers.count,
                "stores": result.manifests.stores.count, "policies": result.manifests.policies.count,
            ],
            "summary": ["errors": summary.errors, "policyViolations": summary.policyViolations, "warnings": summary.warnings],
            "diagnostics": items,
            "omittedDiagnostics": max(0, result.diagnostics.count - maxShown),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
