import ArgumentParser
import Foundation
import Logging
import Synchronization

/// How log lines are written: `human` (swift-log's stream format) or `json` (one object a line, for collectors).
package enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case human, json
}

/// Configures swift-log once, before any command runs: the level from `TOKENCTL_LOG_LEVEL` (default warning),
/// the format from `--log-format` on the command line or `TOKENCTL_LOG_FORMAT`. Logs go to stderr.
package enum LogSetup {
    /// Bootstraps the logging system for the given command line.
    package static func bootstrap(arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment) {
        let level = environment["TOKENCTL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let format = format(arguments: arguments) ?? environment["TOKENCTL_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .human
        LoggingSystem.bootstrap { label in
            switch format {
            case .human:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, logLevel: level)
            }
        }
    }

    /// The value of `--log-format X` or `--log-format=X`, if given (the command's parser validates it too).
    static func format(arguments: [String]) -> LogFormat? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--", index > 0 { break }
            if argument == "--log-format", index + 1 < arguments.count { return LogFormat(rawValue: arguments[index + 1]) }
            if argument.hasPrefix("--log-format=") { return LogFormat(rawValue: String(argument.dropFirst("--log-format=".count))) }
        }
        return nil
    }
}

/// `--log-format`, for the long-running commands.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log format: human or json (one JSON object per line on stderr). Level: TOKENCTL_LOG_LEVEL.")
    var logFormat: LogFormat = .human
}

/// One JSON object per log line: `ts`, `level`, `logger`, `message`, then the metadata as strings.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    private static let lock = Mutex(())

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) { fields[key] = "\(value)" }
        fields["ts"] = ISO8601DateFormatter().string(from: Date())
        fields["level"] = event.level.rawValue
        fields["logger"] = label
        fields["message"] = event.message.description
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(fields) else { return }
        data.append(0x0A)
        Self.lock.withLock { _ in FileHandle.standardError.write(data) }
    }
}
