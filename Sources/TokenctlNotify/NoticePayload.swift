import Foundation
import TokenctlModel
import TokenctlPlanner

/// The body a batch of notices is posted as, in a Notifier's format. Notices carry identity, owner, issuer, times and
/// the reason; no secret exists in them to render.
///
/// ```swift
/// let body = NoticePayload.body(notices, notifier: "security", format: .slack, at: now)
/// ```
package enum NoticePayload {
    /// The encoded body.
    package static func body(_ notices: [Notice], notifier: String, format: Notifier.Format, at now: Timestamp) -> [UInt8] {
        switch format {
        case .json: return encode(Document(notifier: notifier, sentAt: now, notices: notices))
        case .slack: return encode(SlackMessage(text: slackText(notices, notifier: notifier)))
        case .alertmanager: return encode(notices.map { alert($0, notifier: notifier, at: now) })
        }
    }

    /// tokenctl's own format (version 1), documented in docs/notices.md.
    struct Document: Encodable {
        var formatVersion = 1
        var source = "tokenctl"
        var notifier: String
        var sentAt: Timestamp
        var notices: [Notice]
    }

    struct SlackMessage: Encodable {
        var text: String
    }

    /// An alert as Alertmanager's `POST /api/v2/alerts` takes it. Without `endsAt`, Alertmanager resolves it after its
    /// `resolve_timeout`: a notice is a one-time message, not a condition that stays firing.
    struct Alert: Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
    }

    static func slackText(_ notices: [Notice], notifier: String) -> String {
        let lines = notices.map { notice in
            "• *\(notice.event.rawValue)* \(notice.token.map { "`\($0)`" } ?? notice.issuer.map { "issuer `\($0)`" } ?? ""): \(notice.reason)"
                + (notice.owner.map { " (owner \($0))" } ?? "")
        }
        return "tokenctl: \(counted(notices.count, "notice")) for \(notifier)\n" + lines.joined(separator: "\n")
    }

    static func alert(_ notice: Notice, notifier: String, at now: Timestamp) -> Alert {
        var labels = ["alertname": "TokenctlNotice", "source": "tokenctl", "event": notice.event.rawValue, "notifier": notifier,
                      "severity": notice.event == .expiring || notice.event == .failing ? "warning" : "info"]
        labels["namespace"] = notice.token?.namespace
        labels["token"] = notice.token?.name
        labels["owner"] = notice.owner
        labels["issuer"] = notice.issuer
        labels["credential_id"] = notice.credentialID
        labels["lead_time"] = notice.leadTime?.description
        return Alert(labels: labels, annotations: ["summary": notice.reason, "key": notice.key], startsAt: now.description)
    }

    private static func encode<Value: Encodable>(_ value: Value) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value is strings, numbers and arrays of them: encoding cannot fail.
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}
