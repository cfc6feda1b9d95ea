import Foundation

/// Starting and stopping the real servers tests run (Redis, Prometheus, Alertmanager): stdin from /dev/null, output to
/// a file, this process's environment plus `environment`.
public enum ChildProcess {
    /// Starts `program` with its output in `output` and its errors in `errors`, in `output` too (`errorsToo`), or nowhere;
    /// throws a message that names the Debian `package` to install when it cannot run.
    public static func spawn(_ program: String, _ arguments: [String], output: String, errors: String? = nil, environment: [String: String] = [:],
                             errorsToo: Bool = false, package: String?) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else if errorsToo {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        guard posix_spawn(&pid, program, &actions, nil, argv, envp) == 0 else {
            throw PostgresTestCluster.ClusterError(description: "cannot run \(program)" + (package.map { "; install it (apt-get install \($0))" } ?? ""))
        }
        return pid
    }

    /// Kills `pid` and reaps it.
    public static func stop(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// Polls `probe` every 100 ms for up to `seconds`; true as soon as it holds.
    public static func wait(seconds: Double, until probe: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if probe() { return true }
            usleep(100_000)
        } while Date() < deadline
        return false
    }
}
