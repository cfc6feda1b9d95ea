import Foundation

/// A real PostgreSQL server for tests: the cluster `.ci/run` started (`TOKENCTL_TEST_PG_URL`, `TOKENCTL_TEST_PG_DIR`),
/// or one started here with `Tests/Postgres/pg-cluster.sh` on a free loopback port and removed when the process exits.
///
/// ```swift
/// let cluster = try PostgresTestCluster.shared()
/// let url = try cluster.createDatabase()      // a fresh, empty database
/// try cluster.psql("SELECT 1", url: url)
/// ```
public final class PostgresTestCluster: Sendable {
    /// The superuser URL (database `postgres`).
    public let adminURL: String
    /// The cluster directory (its `server.log` has every statement: `log_statement = all`).
    public let directory: String

    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Postgres/pg-cluster.sh").path

    private static let started: Result<PostgresTestCluster, ClusterError> = {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["TOKENCTL_TEST_PG_URL"], !url.isEmpty {
            return .success(PostgresTestCluster(adminURL: url, directory: environment["TOKENCTL_TEST_PG_DIR"] ?? ""))
        }
        let directory = NSTemporaryDirectory() + "tokenctl-pg-" + UUID().uuidString.prefix(8)
        do throws(ClusterError) {
            let port = try freePort()
            let output = try run(["/bin/bash", script, "start", directory, String(port)])
            let url = output.trimmingCharacters(in: .whitespacesAndNewlines)
            stopAtExit(directory)
            return .success(PostgresTestCluster(adminURL: url, directory: directory))
        } catch {
            return .failure(error)
        }
    }()

    /// The cluster of this test process, started on first use.
    public static func shared() throws -> PostgresTestCluster {
        try started.get()
    }

    init(adminURL: String, directory: String) {
        self.adminURL = adminURL
        self.directory = directory
    }

    /// The URL of the admin user on another database.
    public func url(database: String) -> String {
        guard var components = URLComponents(string: adminURL) else { return adminURL }
        components.path = "/" + database
        return components.string ?? adminURL
    }

    /// Creates a fresh database and returns the admin URL on it.
    public func createDatabase(prefix: String = "t") throws -> String {
        let name = prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        _ = try psql("CREATE DATABASE \(name)", url: adminURL)
        return url(database: name)
    }

    /// Runs SQL through psql and returns its unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, url: String? = nil) throws -> String {
        try Self.run(["/usr/bin/env", "psql", url ?? adminURL, "-v", "ON_ERROR_STOP=1", "-qtAX", "-c", sql])
    }

    /// The server log so far.
    public var serverLog: String {
        (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
    }

    /// Why a cluster could not be started or used.
    public struct ClusterError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs a program; its output goes through files, not pipes, because a server it starts in the background
    /// would hold a pipe open and a reader would never see its end.
    static func run(_ arguments: [String]) throws(ClusterError) -> String {
        let scratch = NSTemporaryDirectory() + "tokenctl-pg-run-" + UUID().uuidString
        let outPath = scratch + ".out", errPath = scratch + ".err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        // posix_spawn and waitpid: Foundation's Process can miss the child's exit when called from a test's
        // cooperative thread, and waits forever.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_TRUNC, 0o600)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], &actions, nil, argv, environ) == 0 else {
            throw ClusterError(description: "cannot run \(arguments[0])")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw ClusterError(description: "\(arguments.prefix(3).joined(separator: " ")) failed: \(errors)")
        }
        return output
    }

    static func freePort() throws(ClusterError) -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw ClusterError(description: "no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func stopAtExit(_ directory: String) {
        stopDirectories.withLock { $0.append(directory) }
        atexit {
            for directory in PostgresTestCluster.stopDirectories.withLock({ $0 }) {
                _ = try? PostgresTestCluster.run(["/bin/bash", PostgresTestCluster.script, "stop", directory])
            }
        }
    }

    private static let stopDirectories = Locked<[String]>([])
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
