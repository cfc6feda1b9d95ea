import Foundation
import Logging
import TokenctlBuiltinIssuer
import TokenctlModel

/// RFC 7662 token introspection over the builtin authority: form in, JSON out.
///
/// ```swift
/// let introspection = Introspection(authority: authority, usage: usage)
/// introspection.answer(formBody: "token=tkc_…", now: now)   // (200, {"active":true,"scope":"orders:read",…})
/// ```
///
/// An inactive token (unknown, revoked, expired, malformed) answers only `{"active":false}`: the answer
/// never tells a caller which of those it was.
package struct Introspection: Sendable {
    /// The largest request body accepted (a token is under 100 bytes; forms carry a few fields more).
    package static let maximumBodyBytes = 4_096

    /// How a request was answered, for metrics.
    package enum Outcome: String, Sendable, CaseIterable {
        case active, inactive
        case badRequest = "bad_request"
        case error
    }

    let authority: BuiltinAuthority
    let usage: UsageRecorder?

    /// Creates the responder; `usage` records last-use times (nil: not recorded).
    package init(authority: BuiltinAuthority, usage: UsageRecorder?) {
        self.authority = authority
        self.usage = usage
    }

    /// Answers a form-encoded body: the HTTP status, a JSON body, and the outcome.
    package func answer(formBody: String, now: Timestamp) -> (status: Int, json: String, outcome: Outcome) {
        guard let token = FormFields.parse(formBody)["token"], !token.isEmpty else {
            return (400, #"{"error":"invalid_request","error_description":"the form field 'token' is required"}"#, .badRequest)
        }
        let verification: Verification
        do {
            verification = try authority.verify(Secret(token), now: now, recordUse: false)
        } catch {
            return (503, #"{"error":"temporarily_unavailable"}"#, .error)
        }
        guard case .valid(let credential) = verification else { return (200, #"{"active":false}"#, .inactive) }
        usage?.note(credentialID: credential.credentialID, at: now)
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
        return (200, "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}", .active)
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

    /// The responder and its last-use recorder over the builtin authority of a state directory. `serve` requires an
    /// existing authority (`requireExisting`); the controller creates it, as its first apply would.
    package static func open(directory: String, requireExisting: Bool, logger: Logger) throws(SetupError) -> (Introspection, UsageRecorder) {
        let path = (directory as NSString).appendingPathComponent(BuiltinAuthority.fileName)
        guard !requireExisting || FileManager.default.fileExists(atPath: path) else {
            throw SetupError(description: "there is no builtin authority at '\(path)'; run tokenctl apply first, or pass the right --state-dir")
        }
        do {
            let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
            let usage = UsageRecorder(authority: authority, every: 5, logger: logger)
            return (Introspection(authority: authority, usage: usage), usage)
        } catch {
            throw SetupError(description: "\(error)")
        }
    }
}
