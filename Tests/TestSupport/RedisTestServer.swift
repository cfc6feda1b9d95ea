import Foundation

/// A real `redis-server` for one test: on a free loopback port, with an admin password, its log and an optional
/// `MONITOR` capture in its own directory; `stop()` kills both and removes the directory.
///
/// ```swift
/// let redis = try RedisTestServer.start()
/// defer { redis.stop() }
/// let reply = try redis.cli(["ACL", "LIST"])
/// ```
public final class RedisTestServer: Sendable {
    /// The port it listens on.
    public let port: Int
    /// The `default` user's password.
    public let adminPassword: String
    /// Its directory: `redis.log`, and `monitor.log` once `startMonitor()` ran.
    public let directory: String
    private let pids: Locked<[pid_t]>

    init(port: Int, adminPassword: String, directory: String, pid: pid_t) {
        self.port = port
        self.adminPassword = adminPassword
        self.directory = directory
        self.pids = Locked([pid])
    }

    /// Starts a server; throws with its log when it does not answer within 10 s.
    public static func start() throws -> RedisTestServer {
        let directory = Scratch.directory("tokenctl-redis")
        let port = try PostgresTestCluster.freePort()
        let password = "admin-" + UUID().uuidString.prefix(8)
        let pid = try spawn("/usr/bin/redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
                                                      "--appendonly", "no", "--requirepass", String(password),
                                                      "--logfile", directory + "/redis.log", "--loglevel", "verbose"],
                            output: "/dev/null")
        let server = RedisTestServer(port: port, adminPassword: String(password), directory: directory, pid: pid)
        for _ in 0..<100 {
            if (try? server.cli(["PING"]))?.contains("PONG") == true { return server }
            usleep(100_000)
        }
        server.stop()
        throw PostgresTestCluster.ClusterError(description: "redis-server did not start on port \(port); is Debian's redis-server installed?")
    }

    /// Runs `redis-cli` as the admin (password through the environment, not argv) and returns its stdout.
    public func cli(_ arguments: [String]) throws -> String {
        try cli(user: "default", password: adminPassword, arguments).stdout
    }

    /// Runs `redis-cli` as `user` and returns its exit status and output (stdout and stderr).
    public func cli(user: String, password: String, _ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let output = directory + "/cli-" + UUID().uuidString
        defer { unlink(output) }
        let pid = try Self.spawn("/usr/bin/redis-cli", ["-p", String(port), "--user", user, "--no-auth-warning"] + arguments,
                                 output: output, environment: ["REDISCLI_AUTH": password], errorsToo: true)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return ((status >> 8) & 0xff, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// Whether `user` authenticates with `password` (a command the user may not run still proves the password).
    public func authenticates(user: String, password: String) throws -> Bool {
        let answer = try cli(user: user, password: password, ["PING"]).stdout
        guard answer.contains("PONG") || answer.contains("NOPERM") else { return false }
        return !answer.contains("WRONGPASS") && !answer.contains("NOAUTH")
    }

    /// Starts capturing every command the server receives into `monitor.log`.
    public func startMonitor() throws {
        let pid = try Self.spawn("/usr/bin/redis-cli", ["-p", String(port), "MONITOR"], output: directory + "/monitor.log",
                                 environment: ["REDISCLI_AUTH": adminPassword])
        pids.withLock { $0.append(pid) }
        usleep(200_000)
    }

    /// Everything the server logged and the monitor saw.
    public func logs() -> String {
        ["redis.log", "monitor.log"].map { (try? String(contentsOfFile: directory + "/" + $0, encoding: .utf8)) ?? "" }.joined()
    }

    /// Kills the server (SIGKILL: it simulates an outage too) and the monitor.
    public func kill() {
        for pid in pids.withLock({ $0 }) {
            Foundation.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids.withLock { $0 = [] }
    }

    /// Stops everything and removes the directory.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func spawn(_ program: String, _ arguments: [String], output: String, environment: [String: String] = [:],
                      errorsToo: Bool = false) throws -> pid_t {
        try ChildProcess.spawn(program, arguments, output: output, environment: environment, errorsToo: errorsToo, package: "redis-server")
    }
}
