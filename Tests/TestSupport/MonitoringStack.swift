import Foundation

/// A real Prometheus (Debian's `prometheus`) and Alertmanager (`prometheus-alertmanager`) for one test, on free loopback
/// ports, with second-scale intervals: Prometheus scrapes `targets` as job `tokenctl` every second, evaluates `rules`
/// every second and sends alerts to the Alertmanager, which posts them to `webhook` at once.
///
/// ```swift
/// let stack = try MonitoringStack.start(targets: ["127.0.0.1:9090"], rules: rulesFile, webhook: receiver.url + "/alerts")
/// defer { stack.stop() }
/// ```
public final class MonitoringStack: Sendable {
    /// Prometheus's port.
    public let prometheusPort: Int
    /// Alertmanager's port.
    public let alertmanagerPort: Int
    /// Where both keep their configuration, data and logs.
    public let directory: String
    private let pids: Locked<[pid_t]>

    init(prometheusPort: Int, alertmanagerPort: Int, directory: String, pids: [pid_t]) {
        self.prometheusPort = prometheusPort
        self.alertmanagerPort = alertmanagerPort
        self.directory = directory
        self.pids = Locked(pids)
    }

    /// Starts both and waits until each says it is ready; throws with their logs when one does not within 30 s.
    public static func start(targets: [String], rules: String, webhook: String) throws -> MonitoringStack {
        let directory = Scratch.directory("tokenctl-monitoring")
        let alertmanagerPort = try PostgresTestCluster.freePort()
        let prometheusPort = try PostgresTestCluster.freePort()
        try """
        route:
          receiver: webhook
          group_by: [alertname, issuer]
          group_wait: 1s
          group_interval: 1s
          repeat_interval: 1h
        receivers:
          - name: webhook
            webhook_configs:
              - url: \(webhook)
                send_resolved: false
        """.write(toFile: directory + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let targetList = targets.map { "'\($0)'" }.joined(separator: ", ")
        try """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        rule_files: ['\(rules)']
        alerting:
          alertmanagers:
            - static_configs: [{targets: ['127.0.0.1:\(alertmanagerPort)']}]
        scrape_configs:
          - job_name: tokenctl
            static_configs: [{targets: [\(targetList)]}]
        """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        var pids: [pid_t] = []
        pids.append(try ChildProcess.spawn("/usr/bin/prometheus-alertmanager", [
            "--config.file=\(directory)/alertmanager.yml", "--storage.path=\(directory)/alertmanager",
            "--web.listen-address=127.0.0.1:\(alertmanagerPort)", "--cluster.listen-address=",
        ], output: directory + "/alertmanager.log", errorsToo: true, package: "prometheus-alertmanager"))
        let stack = MonitoringStack(prometheusPort: prometheusPort, alertmanagerPort: alertmanagerPort, directory: directory, pids: pids)
        do {
            let prometheus = try ChildProcess.spawn("/usr/bin/prometheus", [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/prometheus",
                "--web.listen-address=127.0.0.1:\(prometheusPort)",
            ], output: directory + "/prometheus.log", errorsToo: true, package: "prometheus")
            stack.pids.withLock { $0.append(prometheus) }
            for (name, port) in [("prometheus-alertmanager", alertmanagerPort), ("prometheus", prometheusPort)] {
                guard ChildProcess.wait(seconds: 30, until: { HTTPGet.fetch(port: port, path: "/-/ready")?.status == 200 }) else {
                    throw PostgresTestCluster.ClusterError(description: "\(name) did not become ready on port \(port):\n" + stack.logs)
                }
            }
        } catch {
            stack.stop()
            throw error
        }
        return stack
    }

    /// Both servers' logs.
    public var logs: String {
        ["prometheus.log", "alertmanager.log"].map { name in
            "--- \(name)\n" + ((try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? "(none)")
        }.joined(separator: "\n")
    }

    /// What Prometheus answers at `path` (its HTTP API), e.g. `/api/v1/alerts`.
    public func prometheus(_ path: String) -> String? {
        HTTPGet.fetch(port: prometheusPort, path: path)?.body
    }

    /// Stops both servers and removes the directory.
    public func stop() {
        for pid in pids.withLock({ $0 }) { ChildProcess.stop(pid) }
        pids.withLock { $0 = [] }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A plain HTTP/1.1 GET over a loopback socket, for servers' readiness and APIs.
public enum HTTPGet {
    /// The status and body of `GET path` on 127.0.0.1:`port`, or nil when nothing answers.
    public static func fetch(port: Int, path: String) -> (status: Int, body: String)? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return nil }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        guard request.withCString({ send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let statusText = text.split(separator: " ", maxSplits: 2).dropFirst().first, let status = Int(statusText),
              let split = text.range(of: "\r\n\r\n") else { return nil }
        var body = String(text[split.upperBound...])
        if text[..<split.lowerBound].lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return (status, body)
    }

    private static func dechunk(_ text: String) -> String {
        var rest = Substring(text)
        var body = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let utf8 = rest.utf8
            guard let end = utf8.index(start, offsetBy: size, limitedBy: utf8.endIndex) else { break }
            body += String(rest[start..<end])
            rest = rest[end...].dropFirst(2)
        }
        return body
    }
}
