import NIOCore
import NIOHTTPTypes

/// How long a client may take and how many may connect at once, so that slow or idle connections cannot pin the server.
///
/// ```swift
/// let limits = ConnectionLimits(idleTimeout: .seconds(30), requestTimeout: .seconds(10), maxConnections: 1_000)
/// ```
package struct ConnectionLimits: Sendable, Equatable {
    /// How long a connection may sit between requests, or trickle a request's header, before it is closed.
    package var idleTimeout: TimeAmount
    /// How long a request may take from its header to the end of its body (a `Content-Length` never sent in full).
    package var requestTimeout: TimeAmount
    /// The most connections served at once; more wait to be accepted.
    package var maxConnections: Int

    /// The defaults: 30 s idle, 10 s per request, 1,000 connections.
    package init(idleTimeout: TimeAmount = .seconds(30), requestTimeout: TimeAmount = .seconds(10), maxConnections: Int = 1_000) {
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.maxConnections = maxConnections
    }

    /// The limits in whole seconds, for callers that do not use NIO's types.
    package init(idleSeconds: Int64, requestSeconds: Int64, maxConnections: Int) {
        self.init(idleTimeout: .seconds(idleSeconds), requestTimeout: .seconds(requestSeconds), maxConnections: maxConnections)
    }
}

/// Closes a connection whose request body does not arrive in time. Hummingbird's idle timeout covers the time before
/// a request's header is complete; once the header is in, only this bounds the wait for the body.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}
