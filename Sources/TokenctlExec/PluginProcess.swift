import CProcessSpawn
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a plugin program once: the request goes to its stdin, the answer comes from its stdout, within a time limit and
/// output bounds. The program runs in its own process group, which is killed whole when the time is up, when output
/// passes its bound, and after the program exits (so nothing it left behind outlives the run).
///
/// ```swift
/// let run = try await PluginProcess(command: ["./redis-acl-plugin"], timeout: 30).run(input: Array(request.utf8))
/// ```
package struct PluginProcess: Sendable {
    /// What a run produced.
    package struct Output: Sendable {
        /// The exit status (the signal number plus 128 when killed by one).
        package var status: Int32
        /// Everything the program printed on stdout.
        package var stdout: [UInt8]
        /// The first `stderrLimit` bytes the program printed on stderr.
        package var stderr: [UInt8]
    }

    /// Why a run produced no usable output.
    package enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The program cannot be started.
        case cannotStart(program: String, detail: String)
        /// The time limit passed; the process group was killed.
        case timedOut(seconds: Double)
        /// The program printed more than the bound on stdout; the process group was killed.
        case tooMuchOutput(limit: Int)

        package var description: String {
            switch self {
            case let .cannotStart(program, detail):
                "cannot run '\(program)' (\(detail)); check the path in exec.command and that the file is executable"
            case .timedOut(let seconds):
                "the plugin did not answer within \(TimeLimit.text(seconds)) and was killed with its process group; raise exec.timeout "
                    + "if its backend is slow"
            case .tooMuchOutput(let limit):
                "the plugin printed more than \(limit / 1024 / 1024) MiB on stdout and was killed; a response is one JSON document"
            }
        }
    }

    /// The program and its arguments (no shell).
    package var command: [String]
    /// Seconds before the process group is killed.
    package var timeout: Double
    /// The environment the program gets: never a secret (secrets travel on stdin only).
    package var environment: [String: String]
    /// The most stdout read before the program is killed.
    package var stdoutLimit = 16 * 1024 * 1024
    /// The most stderr kept (the rest is read and dropped).
    package var stderrLimit = 64 * 1024

    /// Creates a runner.
    package init(command: [String], timeout: Double, environment: [String: String] = [:]) {
        self.command = command
        self.timeout = timeout
        self.environment = environment
    }

    /// Runs the program with `input` on its stdin.
    package func run(input: [UInt8]) async throws(Failure) -> Output {
        let result: Result<Output, Failure> = await withCheckedContinuation { continuation in
            // The exchange blocks in poll(2): it gets a thread of its own rather than one of the cooperative pool's.
            let thread = Thread { continuation.resume(returning: runBlocking(input: input)) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        return try result.get()
    }

    /// Runs the program on the calling thread (for the handshake made while manifests load).
    func runBlocking(input: [UInt8]) -> Result<Output, Failure> {
        // A plugin that exits without reading all of its stdin must fail its run, not kill tokenctl with SIGPIPE: the
        // signal is blocked on this thread only while it writes, and a pending one is consumed before unblocking.
        var pipeSignal = sigset_t(), previousMask = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
        defer {
            var none = timespec(tv_sec: 0, tv_nsec: 0)
            while sigtimedwait(&pipeSignal, nil, &none) == SIGPIPE {}
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }
        let program = command.first ?? ""
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        // Close-on-exec from the start: no program spawned meanwhile by another thread may hold these pipes open.
        guard tokenctl_pipe_cloexec(&stdinPipe) == 0, tokenctl_pipe_cloexec(&stdoutPipe) == 0, tokenctl_pipe_cloexec(&stderrPipe) == 0 else {
            for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
            return .failure(.cannotStart(program: program, detail: "no pipes: \(String(cString: strerror(errno)))"))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        // Nothing else of tokenctl's reaches the plugin, even a descriptor another thread opened without close-on-exec.
        tokenctl_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)

        let arguments = command.map { strdup($0) } + [nil]
        let variables = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in arguments + variables { free(pointer) } }
        var pid: pid_t = 0
        var spawned = posix_spawnp(&pid, program, &actions, &attributes, arguments, variables)
        // A program just written (an installer, a test) may be held open for writing by a process forked meanwhile for
        // a moment: ETXTBSY passes once that process execs.
        for attempt in 1...5 where spawned == ETXTBSY {
            usleep(useconds_t(attempt * 20_000))
            spawned = posix_spawnp(&pid, program, &actions, &attributes, arguments, variables)
        }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            return .failure(.cannotStart(program: program, detail: String(cString: strerror(spawned))))
        }
        var exchange = Exchange(pid: pid, stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0], input: input,
                                stdoutLimit: stdoutLimit, stderrLimit: stderrLimit)
        let outcome = exchange.pump(deadline: Monotonic.now() + UInt64(timeout * 1_000_000_000))
        // The group goes in every case, before the program is reaped (so its id cannot have been reused): a plugin's
        // leftover children must not outlive its run.
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exchange.closeAll()
        switch outcome {
        case .timedOut: return .failure(.timedOut(seconds: timeout))
        case .tooMuchOutput: return .failure(.tooMuchOutput(limit: stdoutLimit))
        case .failed(let code): return .failure(.cannotStart(program: program, detail: "its pipes failed: \(String(cString: strerror(code)))"))
        case .finished:
            let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return .success(Output(status: exitStatus, stdout: exchange.stdoutBytes, stderr: exchange.stderrBytes))
        }
    }
}

/// Nanoseconds of a clock that wall-clock changes do not move.
enum Monotonic {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// The poll loop that feeds stdin and drains stdout and stderr together, so a program that prints before it reads
/// cannot deadlock the run. It ends when the program has exited and its output is drained; a child the program left
/// holding the pipes gets a moment, not the whole timeout.
private struct Exchange {
    enum Outcome { case finished, timedOut, tooMuchOutput, failed(Int32) }

    /// How long output is still read after the program exited.
    static let drainAfterExit: UInt64 = 200_000_000

    let pid: pid_t
    var stdin: Int32
    var stdout: Int32
    var stderr: Int32
    let input: [UInt8]
    let stdoutLimit: Int
    let stderrLimit: Int
    var written = 0
    var stdoutBytes: [UInt8] = []
    var stderrBytes: [UInt8] = []
    var exitedAt: UInt64?

    init(pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32, input: [UInt8], stdoutLimit: Int, stderrLimit: Int) {
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.input = input
        self.stdoutLimit = stdoutLimit
        self.stderrLimit = stderrLimit
        _ = fcntl(stdin, F_SETFL, fcntl(stdin, F_GETFL) | O_NONBLOCK)
        if input.isEmpty { closeStdin() }
    }

    /// Whether the program has exited, seen without reaping it (so its process group can still be killed safely).
    mutating func noticeExit(now: UInt64) {
        guard exitedAt == nil else { return }
        var info = siginfo_t()
        if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid { exitedAt = now }
    }

    mutating func pump(deadline: UInt64) -> Outcome {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let now = Monotonic.now()
            guard now < deadline else { return .timedOut }
            noticeExit(now: now)
            if let exitedAt, stdout < 0 && stderr < 0 || now - exitedAt > Self.drainAfterExit { return .finished }
            guard stdout >= 0 || stderr >= 0 else {
                // Output closed, program still running: it may still be finishing its work.
                usleep(5_000)
                continue
            }
            var fds = [pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0), pollfd(fd: stdout, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)]
            // Short waits: an exit with the pipes still held open elsewhere shows only through waitid.
            let ready = poll(&fds, nfds_t(fds.count), Int32(min((deadline - now) / 1_000_000 + 1, 20)))
            if ready < 0 && errno != EINTR { return .failed(errno) }
            guard ready > 0 else { continue }
            if stdin >= 0, fds[0].revents != 0 {
                let count = input.withUnsafeBytes { write(stdin, $0.baseAddress?.advanced(by: written), input.count - written) }
                if count > 0 { written += count }
                // A program that closes stdin early (it needs no more) is its own business; EPIPE ends the writing.
                if count < 0 && errno != EAGAIN && errno != EINTR || written == input.count { closeStdin() }
            }
            if stdout >= 0, fds[1].revents != 0 {
                let count = read(stdout, &buffer, buffer.count)
                if count > 0 {
                    stdoutBytes.append(contentsOf: buffer[0..<count])
                    if stdoutBytes.count > stdoutLimit { return .tooMuchOutput }
                } else if count == 0 || errno != EINTR && errno != EAGAIN {
                    close(stdout)
                    stdout = -1
                }
            }
            if stderr >= 0, fds[2].revents != 0 {
                let count = read(stderr, &buffer, buffer.count)
                if count > 0 {
                    stderrBytes.append(contentsOf: buffer[0..<min(count, max(0, stderrLimit - stderrBytes.count))])
                } else if count == 0 || errno != EINTR && errno != EAGAIN {
                    close(stderr)
                    stderr = -1
                }
            }
        }
    }

    mutating func closeStdin() {
        if stdin >= 0 { close(stdin) }
        stdin = -1
    }

    mutating func closeAll() {
        closeStdin()
        if stdout >= 0 { close(stdout) }
        if stderr >= 0 { close(stderr) }
        stdout = -1
        stderr = -1
    }
}

/// Seconds as an operator writes them.
enum TimeLimit {
    static func text(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
