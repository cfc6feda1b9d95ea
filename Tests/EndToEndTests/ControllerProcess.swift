import Foundation
import Testing

/// A `tokenctl` process left running (the controller, `serve`), with its output in files and its HTTP endpoint.
final class ControllerProcess {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private(set) var address = ""
    private var reaped: Int32?

    init(_ arguments: [String], environment: [String: String] = [:], scratch: String) throws {
        stdoutPath = scratch + "/controller.stdout"
        stderrPath = scratch + "/controller.stderr"
        pid = try BinaryRunner.spawn(BinaryRunner.executable, arguments, environment: environment, stdout: stdoutPath, stderr: stderrPath)
    }

    deinit {
        if reaped == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        BinaryRunner.removeClockFiles(of: pid)
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Waits for "listening on http://HOST:PORT" and remembers the address.
    func waitUntilListening(timeout: Double = 30) throws {
        let found = waitFor(timeout: timeout) { [self] in
            stderr.range(of: #"listening on http://[0-9.]+:[0-9]+"#, options: .regularExpression).map { String(stderr[$0]) }
        }
        let line = try #require(found, "the process did not start listening; stderr:\n\(stderr)")
        address = String(line.dropFirst("listening on http://".count))
    }

    /// Sends an HTTP request and returns the status and body.
    func request(_ method: String, _ path: String, body: String = "", contentType: String = "application/x-www-form-urlencoded") -> HTTPAnswer {
        HTTPAnswer.send(to: address, raw: "\(method) \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: \(contentType)\r\n"
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// A metric's value from /metrics (the sum over every series whose line starts with `prefix`).
    func metric(_ prefix: String) -> Double? {
        let lines = request("GET", "/metrics").body.split(separator: "\n").filter { $0.hasPrefix(prefix) && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { return nil }
        return lines.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the process to exit; returns its exit status, or nil on timeout.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                reaped = code
                return code
            }
            usleep(50_000)
        }
        return nil
    }
}

/// Polls `probe` every 100 ms until it returns a value or the time is up.
func waitFor<T>(timeout: Double, _ probe: () throws -> T?) rethrows -> T? {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        if let value = try probe() { return value }
        usleep(100_000)
    } while Date() < deadline
    return nil
}

/// A minimal HTTP/1.1 client over a POSIX socket, so tests can also send malformed requests.
struct HTTPAnswer {
    var status: Int
    var body: String

    static func send(to address: String, raw: String) -> HTTPAnswer {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return HTTPAnswer(status: 0, body: "bad address \(address)") }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return HTTPAnswer(status: 0, body: "no socket") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &socketAddress.sin_addr)
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return HTTPAnswer(status: 0, body: "connection refused") }
        let bytes = Array(raw.utf8)
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { break }
            sent += written
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return HTTPAnswer(status: status, body: body)
    }
}
