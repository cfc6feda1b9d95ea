import Foundation
import Logging
import NIOCore
import TestSupport
import Testing
import TokenctlBuiltinIssuer
import TokenctlHTTP
import TokenctlModel

/// The in-memory index behind introspection: known tokens are answered from memory, changes arrive with the next
/// refresh, tokens too new for the index are looked up in the database, and uses reach the authority in batches.
@Suite struct IntrospectionIndexTests {
    let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))

    func issue(_ authority: BuiltinAuthority, _ subject: String, expiresIn seconds: Int64 = 3_600) throws -> (id: String, token: String) {
        let issued = try authority.issue(IssueRequest(issuer: "local", owner: "team", subject: subject, scopes: ["orders:read"],
                                                      expiresAt: now + TokenDuration(seconds: seconds), idempotencyKey: nil), now: now)
        return (issued.credentialID, try #require(issued.secret).withRevealed { $0 })
    }

    func active(_ introspection: Introspection, _ token: String, at time: Timestamp? = nil) -> Bool {
        introspection.answer(formBody: "token=\(token)", now: time ?? now).json.contains(#""active":true"#)
    }

    @Test func answersFromMemoryAndFollowsTheChangeLog() throws {
        let directory = Scratch.directory("http-index")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
        let web = try issue(authority, "apps/web")
        let short = try issue(authority, "apps/short", expiresIn: 60)
        let index = try IntrospectionIndex(authority: authority, logger: Logger(label: "test"))
        #expect(index.count == 2)
        let introspection = Introspection(authority: authority, index: index, usage: nil)
        #expect(active(introspection, web.token))
        // Expiry is judged at the request's moment, from memory.
        #expect(active(introspection, short.token))
        #expect(!active(introspection, short.token, at: now + TokenDuration(seconds: 61)))

        // A revocation written by another process reaches the answers with the next refresh, not before: until then
        // the answer came from memory.
        let other = try BuiltinAuthority(directory: directory, mode: .readWrite)
        try other.revoke(credentialID: web.id, now: now)
        #expect(active(introspection, web.token))
        try index.refresh()
        #expect(!active(introspection, web.token))

        // A token issued after the index was loaded is answered at once, from the database.
        let fresh = try issue(other, "apps/fresh")
        #expect(index.count == 2)
        #expect(active(introspection, fresh.token))
        try index.refresh()
        #expect(index.count == 3)
        #expect(active(introspection, fresh.token))
        // Percent-encoded forms take the parsing path and get the same answers.
        let encoded = fresh.token.replacingOccurrences(of: "_", with: "%5F")
        #expect(introspection.answer(formBody: "token_type_hint=access_token&token=\(encoded)", now: now).json.contains(#""active":true"#))
        #expect(introspection.answer(formBody: "token=", now: now).status == 400)
        #expect(introspection.answer(formBody: "token=tkc_short", now: now).json == #"{"active":false}"#)
    }

    @Test func anIndexThatCouldNotFollowTheChangesForASecondIsNotUsed() async throws {
        let directory = Scratch.directory("http-index-stale")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
        let web = try issue(authority, "apps/web")
        let index = try IntrospectionIndex(authority: authority, logger: Logger(label: "test"))
        let introspection = Introspection(authority: authority, index: index, usage: nil)
        try BuiltinAuthority(directory: directory, mode: .readWrite).revoke(credentialID: web.id, now: now)
        #expect(index.isCurrent && active(introspection, web.token), "answered from memory while the index is current")
        // No refresh for over a second (a database that cannot be read, a starved process): the database answers.
        try await Task.sleep(nanoseconds: 1_100_000_000)
        #expect(!index.isCurrent)
        #expect(!active(introspection, web.token))
        // Repeated fields: the first wins on both paths, a bare `token` included.
        #expect(introspection.answer(formBody: "token&token=\(web.token)", now: now).status == 400)
    }

    @Test func usesAnsweredFromMemoryReachTheAuthority() throws {
        let directory = Scratch.directory("http-index-use")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
        let web = try issue(authority, "apps/web")
        let idle = try issue(authority, "apps/idle")
        let index = try IntrospectionIndex(authority: authority, logger: Logger(label: "test"))
        let usage = UsageRecorder(authority: authority, index: index, every: 60, logger: Logger(label: "test"))
        let introspection = Introspection(authority: authority, index: index, usage: usage)
        #expect(active(introspection, web.token, at: now + TokenDuration(seconds: 5)))
        #expect(active(introspection, web.token, at: now + TokenDuration(seconds: 2)))
        usage.flush()
        let used = try authority.lastUsed(issuer: "local")
        #expect(used[web.id] == now + TokenDuration(seconds: 5), "the latest use wins")
        #expect(used[idle.id] == nil)
        // A use survives the index replacing the entry (a scope change, say) and is written once.
        try authority.update(credentialID: web.id, scopes: ["orders:write"])
        #expect(active(introspection, web.token, at: now + TokenDuration(seconds: 9)))
        try index.refresh()
        #expect(index.takeUses()[web.id] == now + TokenDuration(seconds: 9))
        #expect(index.takeUses().isEmpty)
        #expect(introspection.answer(formBody: "token=\(web.token)", now: now).json.contains(#""scope":"orders:write""#))
    }
}
