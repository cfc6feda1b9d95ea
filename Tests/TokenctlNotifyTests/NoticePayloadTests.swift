import Foundation
import Testing
import TokenctlModel
import TokenctlNotify
import TokenctlPlanner

/// The three payload formats carry identity, owner, times and the reason, in the shape their receivers expect.
@Suite struct NoticePayloadTests {
    let now = Timestamp(secondsSinceEpoch: 1_796_040_000)
    let expiring = Notice(notifier: "security", event: .expiring, key: "expiring/apps/api/1796400000/3d", token: TokenID(namespace: "apps", name: "api"),
                          owner: "team-apps", issuer: "local", version: 2, credentialID: nil, at: Timestamp(secondsSinceEpoch: 1_796_400_000),
                          leadTime: TokenDuration(seconds: 3 * 86_400), reason: "apps/api v2 expires soon")
    let ghost = Notice(notifier: "security", event: .ghost, key: "ghost/local/tk-123", token: nil, owner: nil, issuer: "local", version: nil,
                       credentialID: "tk-123", at: nil, leadTime: nil, reason: "credential tk-123 at issuer local is not known")

    func json(_ bytes: [UInt8]) throws -> Any { try JSONSerialization.jsonObject(with: Data(bytes)) }

    @Test func jsonIsTokenctlsVersionedDocument() throws {
        let document = try #require(try json(NoticePayload.body([expiring, ghost], notifier: "security", format: .json, at: now)) as? [String: Any])
        #expect(document["formatVersion"] as? Int == 1 && document["source"] as? String == "tokenctl" && document["notifier"] as? String == "security")
        #expect(document["sentAt"] as? String == "2026-11-30T12:00:00Z")
        let notices = try #require(document["notices"] as? [[String: Any]])
        #expect(notices.count == 2)
        #expect(notices[0]["token"] as? String == "apps/api" && notices[0]["owner"] as? String == "team-apps")
        #expect(notices[0]["at"] as? String == "2026-12-04T16:00:00Z" && notices[0]["leadTime"] as? String == "3d")
        #expect(notices[1]["credentialID"] as? String == "tk-123" && notices[1]["token"] as? String == nil)
    }

    @Test func slackIsOneMessageWithALinePerNotice() throws {
        let message = try #require(try json(NoticePayload.body([expiring, ghost], notifier: "security", format: .slack, at: now)) as? [String: Any])
        let text = try #require(message["text"] as? String)
        #expect(text.hasPrefix("tokenctl: 2 notices for security\n"))
        #expect(text.contains("• *expiring* `apps/api`: apps/api v2 expires soon (owner team-apps)"))
        #expect(text.contains("• *ghost* issuer `local`: credential tk-123"))
    }

    @Test func alertmanagerGetsAnAlertPerNoticeWithOnlyPresentLabels() throws {
        let alerts = try #require(try json(NoticePayload.body([expiring, ghost], notifier: "security", format: .alertmanager, at: now)) as? [[String: Any]])
        #expect(alerts.count == 2)
        let labels = try #require(alerts[0]["labels"] as? [String: String])
        #expect(labels == ["alertname": "TokenctlNotice", "source": "tokenctl", "event": "expiring", "notifier": "security", "severity": "warning",
                           "namespace": "apps", "token": "api", "owner": "team-apps", "issuer": "local", "lead_time": "3d"])
        #expect((alerts[0]["annotations"] as? [String: String])?["summary"] == "apps/api v2 expires soon")
        #expect(alerts[0]["startsAt"] as? String == "2026-11-30T12:00:00Z")
        let ghostLabels = try #require(alerts[1]["labels"] as? [String: String])
        #expect(ghostLabels["credential_id"] == "tk-123" && ghostLabels["token"] == nil && ghostLabels["severity"] == "info")
    }
}
