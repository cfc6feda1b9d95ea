import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Prometheus
import Synchronization
import TestSupport
import Testing
import TokenctlBuiltinIssuer
import TokenctlHTTP
import TokenctlModel

/// The HTTP routes in process: requests go straight to the router's responder, without a socket or a server.
@Suite struct RouterTests {
    /// Collects a response body.
    final class Collector: ResponseBodyWriter {
        var bytes = ByteBuffer()
        func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            bytes.writeBuffer(&buffer)
        }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    struct Answer {
        var status: HTTPResponse.Status
        var contentType: String?
        var body: String
    }

    static func send(_ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: String,
                     contentType: String? = nil, body: String = "") async throws -> Answer {
        var headers = HTTPFields()
        if let contentType { headers[.contentType] = contentType }
        let request = Request(head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path, headerFields: headers),
                              body: RequestBody(buffer: ByteBuffer(string: body)))
        let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = try await router.buildResponder().respond(to: request, context: context)
        let collector = Collector()
        try await response.body.write(collector)
        return Answer(status: response.status, contentType: response.headers[.contentType], body: String(buffer: collector.bytes))
    }

    @Test func healthReadinessAndMetrics() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "tokenctl_test_total").increment(by: Int64(3))
        let ready = Mutex(true)
        let router = HTTPEndpoint.router(registry: registry, readiness: { ready.withLock { $0 } ? (true, "all good") : (false, "state unreachable") },
                                         introspection: nil)
        let health = try await Self.send(router, .get, "/healthz")
        #expect(health.status == .ok && health.body == "ok\n")
        #expect(try await Self.send(router, .get, "/readyz").body == "ready: all good\n")
        ready.withLock { $0 = false }
        let notReady = try await Self.send(router, .get, "/readyz")
        #expect(notReady.status == .serviceUnavailable && notReady.body == "not ready: state unreachable\n")
        let metrics = try await Self.send(router, .get, "/metrics")
        #expect(metrics.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(metrics.body.contains("tokenctl_test_total 3"))
        #expect(try await Self.send(router, .post, "/introspect").status == .notFound, "no introspection unless asked for")
    }

    @Test func introspectionAnswersFromTheAuthority() async throws {
        let authority = try BuiltinAuthority(directory: Scratch.directory("http"), mode: .readWrite)
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let issued = try authority.issue(IssueRequest(issuer: "local", owner: "team", subject: "apps/web", scopes: ["orders:read"],
                                                      expiresAt: now + TokenDuration(seconds: 3_600), idempotencyKey: nil), now: now)
        let token = try #require(issued.secret).withRevealed { $0 }
        let router = HTTPEndpoint.router(registry: PrometheusCollectorRegistry(), readiness: { (true, "") },
                                         introspection: Introspection(authority: authority, usage: nil))
        let form = "application/x-www-form-urlencoded"

        let valid = try await Self.send(router, .post, "/introspect", contentType: form, body: "token=\(token)")
        #expect(valid.status == .ok && valid.contentType == "application/json")
        #expect(valid.body.contains(#""active":true"#) && valid.body.contains(#""scope":"orders:read""#))
        #expect(!valid.body.contains(token), "the answer never carries the token")
        let unknown = try await Self.send(router, .post, "/introspect", contentType: form, body: "token=tkc_unknown")
        #expect(unknown.body == #"{"active":false}"#)
        try authority.revoke(credentialID: issued.credentialID, now: now)
        #expect(try await Self.send(router, .post, "/introspect", contentType: form, body: "token=\(token)").body == #"{"active":false}"#)

        let json = try await Self.send(router, .post, "/introspect", contentType: "application/json", body: #"{"token":"x"}"#)
        #expect(json.status == .unsupportedMediaType)
        let large = try await Self.send(router, .post, "/introspect", contentType: form,
                                        body: "token=" + String(repeating: "a", count: Introspection.maximumBodyBytes + 1))
        #expect(large.status == .contentTooLarge)
    }
}
