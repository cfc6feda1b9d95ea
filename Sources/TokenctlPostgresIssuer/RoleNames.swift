import Crypto
import Foundation
import TokenctlModel

/// Role names from a template such as `tk_{namespace}_{name}_v{version}`, and the ownership marker every
/// managed role carries as its comment.
package struct RoleNames: Sendable {
    /// The template with `{namespace}`, `{name}` and `{version}`.
    package let template: String
    /// The Issuer's name, written into the marker.
    package let issuer: String

    /// PostgreSQL truncates identifiers to 63 bytes.
    static let maximumLength = 63

    /// Creates the naming of one issuer.
    package init(template: String, issuer: String) {
        self.template = template
        self.issuer = issuer
    }

    /// The role of version `version` of token `subject` (`namespace/name`): lower case, `[a-z0-9_]` only,
    /// and when longer than 63 bytes, cut with a hash suffix so that distinct tokens keep distinct roles.
    package func role(subject: String, version: Int) -> String {
        let parts = subject.split(separator: "/", maxSplits: 1).map(String.init)
        let namespace = parts.count == 2 ? parts[0] : "default"
        let name = parts.last ?? subject
        let clean = PostgresSettings.cleanRoleName(template: template, namespace: namespace, name: name, version: version)
        guard clean.utf8.count > Self.maximumLength else { return clean }
        let digest = SHA256.hash(data: Data(clean.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        let suffix = "_v\(version)_\(digest)"
        return String(clean.prefix(Self.maximumLength - suffix.count)) + suffix
    }

    /// A SQL `LIKE` pattern matching every name the template can produce (the placeholders become `%`).
    package var likePattern: String {
        var pattern = ""
        var rest = Substring(template.lowercased())
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            pattern += Self.escapeLike(String(rest[..<open])) + "%"
            rest = rest[rest.index(after: close)...]
        }
        return pattern + Self.escapeLike(String(rest))
    }

    /// The comment that marks a role as tokenctl's: issuer, token, version and the intent's idempotency key.
    package func marker(subject: String, version: Int, intent: String?) -> String {
        "tokenctl:issuer=\(issuer);token=\(subject);version=\(version);intent=\(intent ?? "-");"
    }

    /// The marker prefix of this issuer's roles.
    package var markerPrefix: String { "tokenctl:issuer=\(issuer);" }

    /// The intent key inside a marker.
    package static func intent(inMarker marker: String) -> String? {
        guard let range = marker.range(of: ";intent=") else { return nil }
        let value = marker[range.upperBound...].prefix { $0 != ";" }
        return value == "-" ? nil : String(value)
    }

    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
