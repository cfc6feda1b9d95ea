import Foundation

/// A real `rabbitmq-server` with the management plugin, one per test process: on free loopback ports, with its own
/// Erlang port mapper, home, data and logs in one directory; killed with everything it started when the process exits.
///
/// ```swift
/// let rabbit = try RabbitMQTestServer.shared()
/// let users = try rabbit.api("/api/users")
/// ```
public final class RabbitMQTestServer: Sendable {
    /// The management API's base URL.
    public let managementURL: String
    /// The AMQP port.
    public let amqpPort: Int
    /// The admin user (`guest`, allowed from loopback) and its password.
    public let adminUser = "guest", adminPassword = "guest"
    /// Its directory: `log/` has the broker's logs.
    public let directory: String
    let epmdPort: Int
    let processGroup: pid_t

    private static let started: Result<RabbitMQTestServer, PostgresTestCluster.ClusterError> = {
        do throws(PostgresTestCluster.ClusterError) {
            let server = try start()
            atexit { if case .success(let server) = RabbitMQTestServer.started { server.stop() } }
            return .success(server)
        } catch {
            return .failure(error)
        }
    }()

    /// The server of this test process, started on first use (about 6 s).
    public static func shared() throws -> RabbitMQTestServer {
        try started.get()
    }

    init(managementURL: String, amqpPort: Int, directory: String, epmdPort: Int, processGroup: pid_t) {
        self.managementURL = managementURL
        self.amqpPort = amqpPort
        self.directory = directory
        self.epmdPort = epmdPort
        self.processGroup = processGroup
    }

    static func start() throws(PostgresTestCluster.ClusterError) -> RabbitMQTestServer {
        let directory = Scratch.directory("tokenctl-rabbitmq")
        let amqp = try PostgresTestCluster.freePort(), management = try PostgresTestCluster.freePort()
        let distribution = try PostgresTestCluster.freePort(), epmd = try PostgresTestCluster.freePort()
        try? FileManager.default.createDirectory(atPath: directory + "/home", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: directory + "/enabled_plugins", contents: Data("[rabbitmq_management].\n".utf8))
        FileManager.default.createFile(atPath: directory + "/rabbitmq.conf", contents: Data("""
            listeners.tcp.default = \(amqp)
            management.tcp.port = \(management)
            management.tcp.ip = 127.0.0.1
            log.file.level = debug

            """.utf8))
        let environment = ["HOME": directory + "/home", "RABBITMQ_NODENAME": "tokenctl-test-\(amqp)@localhost",
                           "RABBITMQ_MNESIA_BASE": directory + "/mnesia", "RABBITMQ_LOG_BASE": directory + "/log",
                           "RABBITMQ_ENABLED_PLUGINS_FILE": directory + "/enabled_plugins", "RABBITMQ_CONFIG_FILE": directory + "/rabbitmq",
                           "RABBITMQ_DIST_PORT": String(distribution), "ERL_EPMD_PORT": String(epmd)]
        let program = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/server.out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let argv = [strdup(program), nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        guard posix_spawn(&pid, program, &actions, &attributes, argv, envp) == 0 else {
            throw PostgresTestCluster.ClusterError(description: "cannot run \(program); install rabbitmq-server")
        }
        let server = RabbitMQTestServer(managementURL: "http://127.0.0.1:\(management)", amqpPort: amqp, directory: directory,
                                        epmdPort: epmd, processGroup: pid)
        for _ in 0..<120 {
            if (try? server.api("/api/overview"))?.contains("management_version") == true { return server }
            usleep(250_000)
        }
        let log = (try? String(contentsOfFile: directory + "/server.out", encoding: .utf8)) ?? ""
        server.stop()
        throw PostgresTestCluster.ClusterError(description: "rabbitmq-server did not answer within 30 s: \(log.suffix(2000))")
    }

    /// A management API call as the admin (curl); returns the body.
    public func api(_ path: String, method: String = "GET", body: String? = nil) throws(PostgresTestCluster.ClusterError) -> String {
        var arguments = ["/usr/bin/curl", "-s", "-u", "\(adminUser):\(adminPassword)", "-X", method, "-H", "content-type: application/json"]
        if let body { arguments += ["-d", body] }
        return try PostgresTestCluster.run(arguments + [managementURL + path])
    }

    /// Whether RabbitMQ accepts `password` for `user` over AMQP (the password goes to python3 on stdin, then to the server).
    public func authenticates(user: String, password: String) throws -> Bool {
        let script = """
            import socket, struct, sys
            user, password = sys.argv[1], sys.stdin.read()
            s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
            s.sendall(b"AMQP\\x00\\x00\\x09\\x01")
            f = s.makefile("rb")
            def frame():
                kind, channel, size = struct.unpack(">BHI", f.read(7)); payload = f.read(size); f.read(1); return kind, payload
            frame()
            response = ("\\0%s\\0%s" % (user, password)).encode()
            args = struct.pack(">HHI", 10, 11, 0) + b"\\x05PLAIN" + struct.pack(">I", len(response)) + response + b"\\x05en_US"
            s.sendall(struct.pack(">BHI", 1, 0, len(args)) + args + b"\\xce")
            try:
                kind, payload = frame()
                print("accepted" if payload[:4] == struct.pack(">HH", 10, 30) else "refused")
            except Exception:
                print("refused")
            """
        let input = directory + "/password-" + UUID().uuidString
        FileManager.default.createFile(atPath: input, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        defer { unlink(input) }
        let output = try PostgresTestCluster.run(["/bin/sh", "-c", "exec python3 -c \"$0\" \"$1\" \"$2\" < \"$3\"", script, user,
                                                  String(amqpPort), input])
        return output.contains("accepted")
    }

    /// Everything the broker logged.
    public func logs() -> String {
        let logDirectory = directory + "/log"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: logDirectory)) ?? []
        return files.map { (try? String(contentsOfFile: logDirectory + "/" + $0, encoding: .utf8)) ?? "" }.joined()
            + ((try? String(contentsOfFile: directory + "/server.out", encoding: .utf8)) ?? "")
    }

    /// Kills the broker's process group and its port mapper, and removes the directory.
    public func stop() {
        kill(-processGroup, SIGKILL)
        var status: Int32 = 0
        waitpid(processGroup, &status, 0)
        // The port mapper refuses to stop while it still lists the node, which it drops a moment after the kill.
        _ = try? PostgresTestCluster.run(["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do ERL_EPMD_PORT=$0 epmd -kill >/dev/null 2>&1 && exit 0; sleep 0.3; done",
                                          String(epmdPort)])
        try? FileManager.default.removeItem(atPath: directory)
    }
}
