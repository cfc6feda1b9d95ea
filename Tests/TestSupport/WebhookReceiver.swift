import Foundation

/// A local HTTP receiver for webhooks (Alertmanager's, tokenctl's notices): it records every request and answers with
/// the status `answer` picks, after the delay it picks, so tests can play a receiver that is down, slow or failing.
///
/// ```swift
/// let receiver = try WebhookReceiver.start()
/// defer { receiver.stop() }
/// // point the sender at receiver.url + "/hook", then:
/// receiver.requests.first?.body
/// ```
public final class WebhookReceiver: Sendable {
    /// One request received.
    public struct Request: Sendable {
        /// The method, e.g. `POST`.
        public var method: String
        /// The path with its query.
        public var path: String
        /// Header fields, names lowercased.
        public var headers: [String: String]
        /// The body, as text.
        public var body: String
        /// The status it was answered with.
        public var status = 0
    }

    /// How to answer one request: its status and how long to wait first.
    public typealias Answer = @Sendable (Request) -> (status: Int, delay: Double)

    /// The port it listens on (loopback).
    public let port: Int
    private let socket: Int32
    private let received = Locked<[Request]>([])
    private let answer: Locked<Answer>
    private let stopped = Locked(false)
    private let replyHeaders = Locked<[String: String]>([:])
    private let stall = Locked<Double>(0)

    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Every request so far, oldest first.
    public var requests: [Request] { received.withLock { $0 } }

    /// Changes how later requests are answered.
    public func answer(with answer: @escaping Answer) { self.answer.withLock { $0 = answer } }

    /// Header fields every later answer carries, e.g. `Retry-After` or `Location`.
    public func answerHeaders(_ headers: [String: String]) { replyHeaders.withLock { $0 = headers } }

    /// Later answers send their header, promise a body, and then send nothing for `seconds`: a receiver that stalls.
    public func stallAfterHeader(for seconds: Double) { stall.withLock { $0 = seconds } }

    init(socket: Int32, port: Int, answer: @escaping Answer) {
        self.socket = socket
        self.port = port
        self.answer = Locked(answer)
    }

    /// Starts listening on a free loopback port; answers 200 at once unless told otherwise.
    public static func start(answer: @escaping Answer = { _ in (200, 0) }) throws -> WebhookReceiver {
        let descriptor = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0 && listen(descriptor, 64) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw PostgresTestCluster.ClusterError(description: "the webhook receiver could not listen on loopback")
        }
        let receiver = WebhookReceiver(socket: descriptor, port: Int(UInt16(bigEndian: address.sin_port)), answer: answer)
        Thread.detachNewThread { receiver.acceptLoop() }
        return receiver
    }

    /// Stops accepting; requests being answered finish on their own.
    public func stop() {
        stopped.withLock { $0 = true }
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR { continue }
                return
            }
            Thread.detachNewThread { self.serve(connection) }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard var request = Self.read(connection) else { return }
        let (status, delay) = answer.withLock { $0 }(request)
        request.status = status
        received.withLock { $0.append(request) }
        if delay > 0 { usleep(useconds_t(delay * 1_000_000)) }
        let extra = replyHeaders.withLock { $0 }.map { "\($0.key): \($0.value)\r\n" }.joined()
        let stallFor = stall.withLock { $0 }
        let reply = "HTTP/1.1 \(status) Status\r\n\(extra)Content-Length: \(stallFor > 0 ? 100 : 0)\r\nConnection: close\r\n\r\n"
        _ = reply.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        if stallFor > 0 { usleep(useconds_t(stallFor * 1_000_000)) }
    }

    private static func read(_ connection: Int32) -> Request? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            if let end = headerEnd, bytes.count >= end + contentLength { break }
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { return nil }
            bytes += chunk[0..<count]
            if headerEnd == nil, let range = findHeaderEnd(bytes) {
                headerEnd = range
                let head = String(decoding: bytes[0..<range], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
        }
        guard let end = headerEnd else { return nil }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: true)
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Request(method: requestLine.first.map(String.init) ?? "", path: requestLine.dropFirst().first.map(String.init) ?? "",
                       headers: headers, body: String(decoding: bytes[end..<(end + contentLength)], as: UTF8.self))
    }

    /// The offset just past the blank line that ends the header.
    private static func findHeaderEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index + 4
        }
        return nil
    }
}
