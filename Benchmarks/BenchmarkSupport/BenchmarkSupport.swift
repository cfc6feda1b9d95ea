import CYaml
import Foundation

/// Helpers shared by the benchmark programs: a monotonic clock, the bare libyaml floor, and child-process measurement.
public enum Bench {
    /// Prints a message and exits 1.
    public static func fail(_ program: String, _ message: String) -> Never {
        FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
        exit(1)
    }

    /// Monotonic seconds.
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// The value following `name` on the command line.
    public static func option(_ name: String) -> String? {
        let arguments = CommandLine.arguments
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    /// The floor: libyaml parsing every event of every file on one thread, nothing decoded.
    public static func bareEventLoop(_ files: [String]) -> (seconds: Double, events: Int, bytes: Int) {
        var events = 0
        var bytes = 0
        let start = now()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fail("bench", "cannot read \(file)") }
            bytes += data.count
            data.withUnsafeBytes { raw in
                var parser = yaml_parser_t()
                var event = yaml_event_t()
                yaml_parser_initialize(&parser)
                yaml_parser_set_input_string(&parser, raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
                while true {
                    guard yaml_parser_parse(&parser, &event) == 1 else { fail("bench", "libyaml failed on \(file)") }
                    let done = event.type == YAML_STREAM_END_EVENT
                    yaml_event_delete(&event)
                    events += 1
                    if done { break }
                }
                yaml_parser_delete(&parser)
            }
        }
        return (now() - start, events, bytes)
    }

    /// Runs a command (output discarded) and returns its wall time, exit status and peak resident memory in KiB.
    public static func measureChild(_ arguments: [String]) -> (seconds: Double, status: Int32, maxRSSKiB: Int) {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let start = now()
        guard posix_spawn(&pid, arguments[0], &actions, nil, argv, environ) == 0 else { fail("bench", "cannot run \(arguments[0])") }
        var status: Int32 = 0
        var usage = rusage()
        wait4(pid, &status, 0, &usage)
        let seconds = now() - start
        posix_spawn_file_actions_destroy(&actions)
        return (seconds, (status >> 8) & 0xff, Int(usage.ru_maxrss))
    }
}
