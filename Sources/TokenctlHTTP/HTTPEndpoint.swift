import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import TokenctlModel

/// Where the HTTP endpoint listens: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface.
package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host or address to bind.
    package var host: String
    /// The port; 0 picks a free one (printed when listening).
    package var port: Int

    /// Parses `127.0.0.1:9090`, `[::1]:9090` or `:9090`.
    package init(parsing text: String) throws(ListenAddressError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ListenAddressError(text: text)
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A listen address that does not parse.
package struct ListenAddressError: Error, CustomStringConvertible {
    /// What was given.
    package var text: String
    package var description: String {
        "invalid listen address '\(text)': write HOST:PORT, e.g. 127.0.0.1:9090, or :9090 to listen on every interface"
    }
}

/// The HTTP endpoint of `reconcile --watch --listen` and `tokenctl serve`, on hummingbird:
///
/// - `GET /healthz`: 200 while the process runs.
/// - `GET /readyz`: 200 or 503 with the reason, from `readiness`.
/// - `GET /metrics`: every metric in Prometheus text format.
/// - `POST /introspect`: RFC 7662 introspection of builtin tokens, when `introspection` is given.
///
/// ```swift
/// let server = HTTPEndpoint.service(address: try ListenAddress(parsing: ":9090"), registry: registry,
///                                   readiness: { health.readiness(at: Date().timeIntervalSince1970) },
///                                   introspection: nil, logger: logger, onListening: { print("listening on \($0)") })
/// ```
package enum HTTPEndpoint {
    /// Builds the server as a `Service` for the process's ServiceGroup.
    package static func service(address: ListenAddress, registry: PrometheusCollectorRegistry,
                               readiness: @escaping @Sendable () -> (ready: Bool, reason: String),
                               introspection: Introspection?, limits: ConnectionLimits = ConnectionLimits(), logger: Logger,
                               onListening: @escaping @Sendable (String) -> Void) -> any Service {
        let router = Self.router(registry: registry, readiness: readiness, introspection: introspection)
        let host = address.host
        let requestTimeout = limits.requestTimeout
        return Application(
            router: router,
            server: .http1(configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [RequestDeadlineHandler(timeout: requestTimeout)], idleTimeout: limits.idleTimeout)),
            configuration: ApplicationConfiguration(address: .hostname(host, port: address.port), serverName: nil,
                                                    availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                onListening(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            },
            logger: logger
        )
    }

    /// The `# HELP` text of the metrics the endpoint itself records.
    package static let metricHelp = ["tokenctl_introspection_requests_total": "Introspection requests answered, by result."]

    /// The routes, without a server: what `service` serves, and what the in-process tests call.
    package static func router(registry: PrometheusCollectorRegistry, readiness: @escaping @Sendable () -> (ready: Bool, reason: String),
                              introspection: Introspection?) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("healthz") { _, _ in text("ok\n") }
        router.get("readyz") { _, _ in
            let (ready, reason) = readiness()
            return text((ready ? "ready: " : "not ready: ") + reason + "\n", status: ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        if let introspection {
            let counters = Dictionary(uniqueKeysWithValues: Introspection.Outcome.allCases.map {
                ($0, Counter(label: "tokenctl_introspection_requests_total", dimensions: [("result", $0.rawValue)]))
            })
            router.post("introspect") { request, _ -> Response in
                var request = request
                let contentType = request.headers[.contentType] ?? ""
                guard contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
                    counters[.badRequest]?.increment()
                    return json(#"{"error":"invalid_request","error_description":"send the token as application/x-www-form-urlencoded"}"#,
                                status: .unsupportedMediaType)
                }
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: Introspection.maximumBodyBytes)
                } catch {
                    counters[.badRequest]?.increment()
                    return json(#"{"error":"invalid_request","error_description":"the request body is too large"}"#, status: .contentTooLarge)
                }
                let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
                let answer = introspection.answer(body: body, now: now)
                counters[answer.outcome]?.increment()
                return Response(status: HTTPResponse.Status(code: answer.status), headers: jsonHeaders, body: ResponseBody(byteBuffer: answer.json))
            }
        }
        return router
    }

    private static func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private static let jsonHeaders: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]

    private static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: jsonHeaders, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
