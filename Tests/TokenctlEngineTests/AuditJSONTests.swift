import Foundation
import Testing
import TokenctlEngine
import TokenctlModel

/// The hand-written audit JSON is byte for byte what Foundation's encoder writes with sorted keys and unescaped
/// slashes, so the sealed text of an entry does not depend on which of the two wrote it, and it decodes back whole.
@Suite struct AuditJSONTests {
    static let awkward = [
        "", "plain", "quote \" and backslash \\ and slash /", "tab\tnewline\ncarriage\rbell\u{07}nul\u{00}escape\u{1B}",
        "backspace\u{08} formfeed\u{0C} unit\u{1F} delete\u{7F}", "naïve café 東京 🔑", "line\u{2028}para\u{2029}",
        "<script>&amp;</script>", "{\"json\": [1, 2]}", "trailing space ",
    ]

    static func reference(_ entry: AuditEntry) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(entry), as: UTF8.self)
    }

    @Test func everyFieldMatchesFoundationsEncoder() throws {
        for (index, text) in Self.awkward.enumerated() {
            let full = AuditEntry(at: Timestamp(secondsSinceEpoch: 1_700_000_000 + Int64(index) * 86_399), kind: "change", requestID: "req-\(text)",
                                  actor: text, host: "host/\(text)", command: "apply \(text)", gitCommit: text, gitDirty: index % 2 == 0,
                                  reason: text, token: TokenID(namespace: "apps", name: "web-\(index)"), action: "rotate",
                                  changeReason: "RotationDue", detail: text,
                                  annotations: [text: text, "ticket": "OPS-\(index)", "Requested-By": text, "item10": "x", "item9": "y",
                                                "a": "lower", "B": "upper", "_under": "u", "élan": "e", "e\u{301}tage": "decomposed", "Z": "z"],
                                  fingerprints: [text, "sha256:\(index)"], result: text)
            let (mine, theirs) = (AuditJSON.encode(full), try Self.reference(full))
            #expect(mine == theirs, "text #\(index)")
            let sparse = AuditEntry(at: Timestamp(secondsSinceEpoch: Int64(index)), kind: "request", requestID: "r", actor: text, host: "h",
                                    command: "plan", annotations: [:], fingerprints: [])
            #expect(AuditJSON.encode(sparse) == (try Self.reference(sparse)), "sparse text #\(index)")
            let bare = AuditEntry(at: Timestamp(secondsSinceEpoch: -Int64(index) * 3_600), kind: "repair", requestID: text, actor: "a", host: text,
                                  command: "rekey")
            #expect(AuditJSON.encode(bare) == (try Self.reference(bare)), "bare text #\(index)")
            let decoded = try JSONDecoder().decode(AuditEntry.self, from: Data(AuditJSON.encode(full).utf8))
            #expect(decoded == full)
        }
    }

    @Test func theEntriesOfARealChangeMatchToo() throws {
        let entry = AuditEntry(at: Timestamp(secondsSinceEpoch: 1_800_000_000), kind: "change", requestID: "0f1e2d", actor: "ci@example",
                               host: "runner-7", command: "reconcile --watch", gitCommit: "a1b2c3", gitDirty: false, token: TokenID(namespace: "payments", name: "stripe"),
                               action: "issue", changeReason: "NotIssued", detail: "issue v1", annotations: ["ticket": "SEC-1"],
                               fingerprints: ["sha256:00ff"], result: "ok")
        #expect(AuditJSON.encode(entry) == (try Self.reference(entry)))
    }
}
