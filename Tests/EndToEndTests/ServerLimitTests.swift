import Foundation
import Testing

/// The HTTP endpoint closes idle and slow connections and bounds how many it serves, so slow clients cannot pin it.
@Suite(.serialized) struct ServerLimitTests {
    /// A raw TCP connection to `address` that has sent `text`.
    static func connect(_ address: String, sending text: String) -> Int32? {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &socketAddress.sin_addr)
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return descriptor
    }

    /// Whether the server closed the connection (reading gives end of file, or the connection was reset).
    static func isClosed(_ descriptor: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        }
    }

    /// `tokenctl serve` over an applied workspace, with `limits` as options.
    static func serve(_ workspace: ApplyCommandTests.Workspace, _ limits: [String]) throws -> ControllerProcess {
        workspace.write(ApplyCommandTests.manifests(tokens: ApplyCommandTests.token("web", lifespan: "90d", every: "30d", overlap: "1d")))
        #expect(try workspace.apply(at: 0).status == 0)
        let server = try ControllerProcess(["serve", "--state-dir", workspace.state, "--listen", "127.0.0.1:0"] + limits, scratch: workspace.root)
        try server.waitUntilListening()
        return server
    }

    @Test func slowAndIdleConnectionsAreClosedAndTheServerStaysUp() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let server = try Self.serve(workspace, ["--idle-timeout", "2s", "--request-timeout", "2s", "--max-connections", "64"])
        // 50 clients that trickle a header and stop, one that never sends anything, and one that announces a body
        // (within the size limit, so that it is waited for) and sends a few bytes of it.
        var slow = (0..<50).compactMap { _ in Self.connect(server.address, sending: "POST /introspect HTTP/1.1\r\nHost: x\r\n") }
        slow += [Self.connect(server.address, sending: ""), Self.connect(server.address, sending:
            "POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=")]
            .compactMap { $0 }
        #expect(slow.count == 52)
        defer { for descriptor in slow { close(descriptor) } }
        #expect(server.request("GET", "/healthz").status == 200, "served while the slow clients wait")
        let closed = await waitForAsync(timeout: 8) { () -> Bool? in slow.allSatisfy(Self.isClosed) ? true : nil }
        #expect(closed == true, "\(slow.filter { !Self.isClosed($0) }.count) slow connections are still open")
        #expect(server.request("GET", "/healthz").status == 200)
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: 20) == 0)
    }

    @Test func aBodyThatNeverArrivesIsBoundedByTheRequestTimeout() async throws {
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        // A long idle timeout, so that only the request timeout can end the wait for the announced body.
        let server = try Self.serve(workspace, ["--idle-timeout", "60s", "--request-timeout", "2s"])
        let client = try #require(Self.connect(server.address, sending:
            "POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken="))
        defer { close(client) }
        #expect(await waitForAsync(timeout: 8) { Self.isClosed(client) ? true : nil } == true, "the request was not cut off")
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: 20) == 0)
    }

    @Test func limitsAreCheckedWhenGiven() throws {
        for arguments in [["--idle-timeout", "0s"], ["--request-timeout", "soon"], ["--max-connections", "0"]] {
            let refused = try BinaryRunner.run(["serve", "--state-dir", "/nonexistent/.tokenctl", "--listen", "127.0.0.1:0"] + arguments)
            #expect(refused.status == 1 && refused.stderr.contains(arguments[0]), "\(arguments): \(refused.stderr)")
        }
    }
}
