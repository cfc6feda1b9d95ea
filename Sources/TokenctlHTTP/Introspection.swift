import Foundation
import NIOCore
import Logging
import TokenctlBuiltinIssuer
import TokenctlModel

/// RFC 7662 token introspection over the builtin authority: form in, JSON out.
///
/// ```swift
/// let introspection = Introspection(authority: authority, index: index, usage: usage)
/// introspection.answer(formBody: "token=tkc_…", now: now)   // (200, {"active":true,"scope":"orders:read",…})
/// ```
///
/// An inactive token (unknown, revoked, expired, malformed) answers only `{"active":false}`: the answer
/// never tells a caller which of those it was. With an index, a token it holds is answered from memory; any other
/// token (too new for the index, or none given) is checked against the authority's database.
package struct Introspection: Sendable {
    /// The largest request body accepted (a token is under 100 bytes; forms carry a few fields more).
    package static let maximumBodyBytes = 4_096

    /// How a request was answered, for metrics.
    package enum Outcome: String, Sendable, CaseIterable {
        case active, inactive
        case badRequest = "bad_request"
        case error
    }

    /// An answer: the HTTP status, the JSON body and the outcome.
    package typealias Answer = (status: Int, json: ByteBuffer, outcome: Outcome)

    let authority: BuiltinAuthority
    let index: IntrospectionIndex?
    let usage: UsageRecorder?

    static let inactive = ByteBuffer(string: #"{"active":false}"#)
    static let missingToken = ByteBuffer(string: #"{"error":"invalid_request","error_description":"the form field 'token' is required"}"#)
    static let unavailable = ByteBuffer(string: #"{"error":"temporarily_unavailable"}"#)

    /// Creates the responder; `index` answers known tokens from memory (nil: every request reads the database), `usage`
    /// records last-use times of tokens answered from the database (nil: not recorded).
    package init(authority: BuiltinAuthority, index: IntrospectionIndex? = nil, usage: UsageRecorder?) {
        self.authority = authority
        self.index = index
        self.usage = usage
    }

    /// Answers a form-encoded body given as text.
    package func answer(formBody: String, now: Timestamp) -> (status: Int, json: String, outcome: Outcome) {
        let answer = self.answer(body: ByteBuffer(string: formBody), now: now)
        return (answer.status, String(buffer: answer.json), answer.outcome)
    }

    /// Answers a form-encoded body: the token's bytes are checked, hashed and looked up where they lie.
    package func answer(body: ByteBuffer, now: Timestamp) -> Answer {
        if let index, index.isCurrent {
            let found = body.withUnsafeReadableBytes { raw -> Answer? in
                guard let token = FormFields.plainValue(of: "token", in: raw) else { return nil }
                guard TokenFormat.hasValidChecksum(bytes: token) else { return (200, Self.inactive, .inactive) }
                guard let entry = index.entry(for: TokenDigest(token: token)) else { return nil }
                let seconds = now.secondsSinceEpoch
                guard !entry.revoked, entry.expiresAt > seconds else { return (200, Self.inactive, .inactive) }
                entry.noteUse(at: seconds)
                return (200, entry.answer, .active)
            }
            if let found { return found }
        }
        return lookUp(formBody: String(buffer: body), now: now)
    }

    /// The database path: percent-encoded forms, and tokens the index does not hold.
    private func lookUp(formBody: String, now: Timestamp) -> Answer {
        guard let token = FormFields.parse(formBody)["token"], !token.isEmpty else { return (400, Self.missingToken, .badRequest) }
        let verification: Verification
        do {
            verification = try authority.verify(Secret(token), now: now, recordUse: false)
        } catch {
            return (503, Self.unavailable, .error)
        }
        guard case .valid(let credential) = verification else { return (200, Self.inactive, .inactive) }
        usage?.note(credentialID: credential.credentialID, at: now)
        return (200, ByteBuffer(string: Self.activeAnswer(credential)), .active)
    }

    /// The JSON of an active answer.
    static func activeAnswer(_ credential: VerifiedCredential) -> String {
        var fields: [(String, String)] = [
            ("active", "true"),
            ("scope", JSONText.string(credential.scopes.joined(separator: " "))),
            ("sub", JSONText.string(credential.subject)),
            ("username", JSONText.string(credential.owner)),
            ("token_type", JSONText.string("Bearer")),
            ("iat", "\(credential.issuedAt.secondsSinceEpoch)"),
        ]
        if let expiresAt = credential.expiresAt { fields.append(("exp", "\(expiresAt.secondsSinceEpoch)")) }
        fields.append(("iss", JSONText.string(credential.issuer)))
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}

/// `application/x-www-form-urlencoded` parsing: `a=1&b=x%20y`, `+` for space; the first of repeated fields wins.
enum FormFields {
    static func parse(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if fields[name] == nil, let value { fields[name] = value }
        }
        return fields
    }

    /// The value of field `name` when it needs no decoding (no `%` or `+`), as the bytes it occupies; nil otherwise, or
    /// when the field is absent, empty or given without a value, for `parse` to settle.
    static func plainValue(of name: StaticString, in body: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let nameBytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        var start = 0
        while start <= body.count {
            var end = start
            while end < body.count && body[end] != UInt8(ascii: "&") { end += 1 }
            let field = UnsafeRawBufferPointer(rebasing: body[start..<end])
            // `token` without `=` is the field with an empty value for `parse`, and the first of repeated fields wins.
            if field.elementsEqual(nameBytes) { return nil }
            if field.count > nameBytes.count, field[nameBytes.count] == UInt8(ascii: "="), field.prefix(nameBytes.count).elementsEqual(nameBytes) {
                let value = UnsafeRawBufferPointer(rebasing: field[(nameBytes.count + 1)...])
                guard !value.isEmpty, !value.contains(UInt8(ascii: "%")), !value.contains(UInt8(ascii: "+")) else { return nil }
                return value
            }
            // A field whose name is encoded could still be `token`: leave such bodies to `parse`.
            if field.prefix(while: { $0 != UInt8(ascii: "=") }).contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
                return nil
            }
            start = end + 1
        }
        return nil
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

/// Minimal JSON string escaping for hand-built responses.
enum JSONText {
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension Introspection {
    /// Why introspection cannot be served; the message says what to do.
    package struct SetupError: Error, CustomStringConvertible {
        package var description: String
    }

    /// The responder, its last-use recorder and its index over the builtin authority of a state directory (the last two
    /// are services to run beside the server). `serve` requires an
    /// existing authority (`requireExisting`); the controller creates it, as its first apply would.
    package static func open(directory: String, requireExisting: Bool, logger: Logger) throws(SetupError) -> (Introspection, UsageRecorder, IntrospectionIndex) {
        let path = (directory as NSString).appendingPathComponent(BuiltinAuthority.fileName)
        guard !requireExisting || FileManager.default.fileExists(atPath: path) else {
            throw SetupError(description: "there is no builtin authority at '\(path)'; run tokenctl apply first, or pass the right --state-dir")
        }
        do {
            let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
            let index = try IntrospectionIndex(authority: authority, logger: logger)
            let usage = UsageRecorder(authority: authority, index: index, every: 5, logger: logger)
            return (Introspection(authority: authority, index: index, usage: usage), usage, index)
        } catch {
            throw SetupError(description: "\(error)")
        }
    }
}
