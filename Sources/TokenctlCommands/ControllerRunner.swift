import ArgumentParser
import Dispatch
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TokenctlBuiltinIssuer
import TokenctlHTTP

/// Runs long-running services in one ServiceGroup: SIGTERM or SIGINT shut down gracefully (the pass in
/// flight finishes and releases the state lock), a second signal exits at once.
enum ControllerRunner {
    /// Sends swift-metrics to a Prometheus registry (once per process) and returns the registry.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    static func run(_ services: [any Service], logger: Logger) async throws {
        let watcher = SecondSignal()
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await group.run()
        withExtendedLifetime(watcher) {}
    }

    /// The introspection responder and its last-use recorder, over the builtin authority of a state directory.
    /// `serve` requires an existing authority; the controller creates it, as its first apply would.
    static func introspection(directory: String, requireExisting: Bool, logger: Logger) throws -> (Introspection, UsageRecorder) {
        let path = (directory as NSString).appendingPathComponent(BuiltinAuthority.fileName)
        guard !requireExisting || FileManager.default.fileExists(atPath: path) else {
            printError("tokenctl: error: there is no builtin authority at '\(path)'; run tokenctl apply first, or pass the right --state-dir")
            throw ExitCode(1)
        }
        do {
            let authority = try BuiltinAuthority(directory: directory, mode: .readWrite)
            let usage = UsageRecorder(authority: authority, every: 5, logger: logger)
            return (Introspection(authority: authority, usage: usage), usage)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Says where the server listens (port 0 picks a free port), always, whatever the log level: as a line of text,
    /// or with `--log-format json` as a JSON log line.
    static func announcer(_ format: LogFormat) -> @Sendable (String) -> Void {
        { address in
            switch format {
            case .human:
                printError("tokenctl: listening on http://\(address)")
            case .json:
                let time = ISO8601DateFormatter().string(from: Date())
                printError(#"{"address":"\#(address)","level":"notice","logger":"tokenctl","message":"listening on http://\#(address)","ts":"\#(time)"}"#)
            }
        }
    }
}

/// Exits at once on the second SIGTERM or SIGINT, when the first one's graceful shutdown takes too long.
final class SecondSignal {
    private let sources: [any DispatchSourceSignal]

    init() {
        let queue = DispatchQueue(label: "tokenctl.signals")
        let count = HitCounter()
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                if count.increment() >= 2 {
                    FileHandle.standardError.write(Data("tokenctl: second signal; exiting now\n".utf8))
                    _exit(128 + number)
                }
            }
            source.resume()
            return source
        }
    }
}
