import Foundation
import TestSupport
import Testing

/// Runs the built `tokenctl` binary and captures its output, exit status, time and peak memory.
struct BinaryRunner {
    struct Outcome {
        var status: Int32
        /// The signal that ended the process, or 0 when it exited.
        var signal: Int32 = 0
        var stdout: String
        var stderr: String
        var seconds: Double
        var maxRSSMiB: Int
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The binary next to the test bundle (both live in the build products folder).
    static var executable: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tokenctl").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        for configuration in ["debug", "release"] {
            let path = packageRoot.appendingPathComponent(".build/\(configuration)/tokenctl").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return beside
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        try runProgram(executable, arguments, environment: environment)
    }

    /// Runs tokenctl with the system clock starting at `moment` (an RFC 3339 time) and ticking from there.
    ///
    /// apply and reconcile take no `--at` (they mint real credentials), so tests that need them at another time run
    /// them under libfaketime (Debian's `faketime`), which shifts the clock of the process from outside.
    static func run(at moment: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        try runProgram(executable, arguments, environment: try clock(at: moment).merging(environment) { $1 })
    }

    /// Removes the shared-memory clock libfaketime made for a process (it makes one per process and leaves it).
    static func removeClockFiles(of pid: pid_t) {
        for name in ["/dev/shm/faketime_shm_\(pid)", "/dev/shm/sem.faketime_sem_\(pid)"] { unlink(name) }
    }

    /// The environment that starts a process's wall clock at `moment` through libfaketime, preloaded directly (not
    /// through the `faketime` wrapper, which forks: a signal to it would not reach tokenctl).
    static func clock(at moment: String) throws -> [String: String] {
        let library = try #require(["x86_64", "aarch64"].map { "/usr/lib/\($0)-linux-gnu/faketime/libfaketime.so.1" }
                                       .first(where: FileManager.default.fileExists(atPath:)),
                                   "the tests run apply at other times under libfaketime: install it with apt-get install faketime")
        let start = "@" + moment.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: "")
        // Without FAKETIME_SHARED the Swift runtime saw no arguments under the library (observed with 0.9.10); a
        // semaphore that does not exist leaves each process its own clock, which is what these tests want.
        return ["LD_PRELOAD": library, "FAKETIME": start, "FAKETIME_SHARED": "/tokenctl-tests-none /tokenctl-tests-none",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1", "TZ": "UTC"]
    }

    static func runProgram(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        let scratch = NSTemporaryDirectory() + "tokenctl-run-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let outPath = scratch + "/stdout", errPath = scratch + "/stderr"
        let start = Date()
        let pid = try spawn(program, arguments, environment: environment, stdout: outPath, stderr: errPath)
        var status: Int32 = 0
        var usage = rusage()
        wait4(pid, &status, 0, &usage)
        if environment["FAKETIME"] != nil { removeClockFiles(of: pid) }
        let seconds = Date().timeIntervalSince(start)
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Outcome(status: (status >> 8) & 0xff, signal: status & 0x7f, stdout: stdout, stderr: stderr, seconds: seconds,
                       maxRSSMiB: Int(usage.ru_maxrss) / 1024)
    }

    /// Starts a program with stdin from /dev/null, stdout and stderr into files, NO_COLOR and `environment` added to
    /// this process's environment; returns its pid.
    static func spawn(_ program: String, _ arguments: [String], environment: [String: String], stdout: String,
                      stderr: String) throws -> pid_t {
        try ChildProcess.spawn(program, arguments, output: stdout, errors: stderr, environment: ["NO_COLOR": "1"].merging(environment) { $1 },
                               package: nil)
    }

    /// Runs tokenctl under a small Python parent and returns its exit status and peak memory (MiB).
    ///
    /// `ru_maxrss` of a child spawned straight from this (large, multi-threaded) test process starts
    /// at the test process's own high-water mark, so a fresh small parent measures it instead.
    static func peakMemory(_ arguments: [String]) throws -> (status: Int32, seconds: Double, maxRSSMiB: Int) {
        let script = """
            import resource, subprocess, sys, time
            start = time.monotonic()
            code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            print(code, time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            """
        let outcome = try runProgram("/usr/bin/env", ["python3", "-c", script, executable] + arguments)
        let fields = outcome.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(fields.count == 3, "python3 failed: \(outcome.stderr)")
        return (Int32(fields[0]) ?? -1, Double(fields[1]) ?? 99, (Int(fields[2]) ?? 0) / 1024)
    }

    /// Starts tokenctl, kills it with SIGKILL after `delay` seconds (if still running), and returns how it ended.
    static func killed(after delay: Double, at moment: String, _ arguments: [String]) throws -> (exited: Bool, status: Int32) {
        let environment = ProcessInfo.processInfo.environment.merging(try clock(at: moment)) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, executable, &actions, nil, argv, envp) == 0)
        usleep(useconds_t(delay * 1_000_000))
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        removeClockFiles(of: pid)
        return ((status & 0x7f) == 0, (status >> 8) & 0xff)
    }

    static func temporaryDirectory() -> String {
        Scratch.directory("tokenctl-e2e")
    }

    static func write(_ text: String, to path: String) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    static func write(_ bytes: [UInt8], to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
}
