import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Why a webhook did not take a notice: what the operator reads in logs and `status`. Never holds the URL, which is a
/// credential, nor anything the receiver sent back.
package enum DeliveryFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL is not an absolute http or https URL.
    case invalidURL
    /// The receiver answered with a status other than 2xx; `retryAfter` is its Retry-After in seconds, if any.
    case status(Int, retryAfter: Int64?)
    /// No answer within the timeout.
    case timeout(seconds: Int64)
    /// No connection: refused, unresolvable, TLS failure.
    case unreachable(String)

    package var description: String {
        switch self {
        case .invalidURL: "the webhook URL is not an absolute http or https URL"
        case .status(let code, _) where (300..<400).contains(code):
            "the receiver redirected (\(code)); tokenctl does not follow redirects, so give the final URL"
        case .status(429, _): "the receiver asked to slow down (429)"
        case .status(let code, _): "the receiver answered \(code)"
        case .timeout(let seconds): "the receiver did not answer within \(seconds)s"
        case .unreachable(let why): "the receiver could not be reached (\(why))"
        }
    }
}

/// Posts notice bodies to webhooks: HTTPS with the system's trust store, a timeout per attempt, redirects never followed.
///
/// ```swift
/// let client = WebhookClient()
/// let result = await client.post(body, to: url, headers: ["Content-Type": "application/json"], timeout: 10)
/// try await client.shutdown()
/// ```
package final class WebhookClient: Sendable {
    private let client: HTTPClient

    /// Creates a client with its own connection pool.
    package init() {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(10))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Posts `body`; nil when the receiver answered 2xx. The timeout covers the whole exchange, the answer's body too.
    package func post(_ body: [UInt8], to url: String, headers: [(String, String)], timeout seconds: Int64) async -> DeliveryFailure? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
              parsed.host?.isEmpty == false else { return .invalidURL }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "User-Agent", value: "tokenctl")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let client = self.client
        let prepared = request
        // A receiver that sends its header and then stalls must not hold delivery: the exchange races a deadline.
        return await withTaskGroup(of: DeliveryFailure??.self) { group in
            group.addTask { await Self.exchange(prepared, client: client, seconds: seconds) }
            group.addTask {
                // A second past the client's own deadline, so that its more precise error (no connection) wins when it has one.
                try? await Task.sleep(for: .seconds(seconds + 1))
                return Task.isCancelled ? nil : .some(.timeout(seconds: seconds))
            }
            var outcome: DeliveryFailure? = .timeout(seconds: seconds)
            for await result in group {
                guard let result else { continue }
                outcome = result
                break
            }
            group.cancelAll()
            return outcome
        }
    }

    private static func exchange(_ request: HTTPClientRequest, client: HTTPClient, seconds: Int64) async -> DeliveryFailure?? {
        do {
            let response = try await client.execute(request, timeout: .seconds(seconds))
            // The answer is read and dropped: nothing a receiver says is shown or logged.
            _ = try await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(Int(response.status.code)) else {
                let retryAfter = response.headers.first(name: "Retry-After").flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
                return .some(.status(Int(response.status.code), retryAfter: retryAfter))
            }
            return .some(nil)
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return .some(.timeout(seconds: seconds))
            case .connectTimeout: return .some(.unreachable("connection timed out"))
            case .remoteConnectionClosed: return .some(.unreachable("connection closed"))
            default: return .some(.unreachable("HTTP client error"))
            }
        } catch is CancellationError {
            return nil
        } catch {
            // NIO's connection errors name the address; a category is enough, and keeps the URL's host out of the logs.
            let text = "\(type(of: error))"
            if text.contains("SSL") || text.contains("TLS") || text.contains("BoringSSL") { return .some(.unreachable("TLS handshake failed")) }
            if text.contains("Connect") || text.contains("IOError") { return .some(.unreachable("connection refused or no route")) }
            return .some(.unreachable("request failed"))
        }
    }

    /// Closes the connection pool.
    package func shutdown() async {
        try? await client.shutdown()
    }

    deinit {
        // A client dropped on an error path is shut down rather than leaked (async-http-client traps on that in debug
        // builds); the task keeps it alive until it is. Shutting down twice is harmless.
        let client = self.client
        Task { try? await client.shutdown() }
    }
}
