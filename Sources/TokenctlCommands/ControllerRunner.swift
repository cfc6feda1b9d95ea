import ArgumentParser
import Dispatch
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TokenctlController
import TokenctlHTTP
import TokenctlNotify

/// Runs long-running services in one ServiceGroup: SIGTERM or SIGINT shut down gracefully (the pass in
/// flight finishes and releases the state lock), a second signal exits at once.
enum ControllerRunner {
    /// Sends swift-metrics to a Prometheus registry (once per process) and returns the registry.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry,
                                                        help: ControllerMetrics.help.merging(HTTPEndpoint.metricHelp) { first, _ in first }
                                                            .merging(NoticeDispatcher.metricHelp) { first, _ in first }))
        return registry
    }

    static func run(_ services: [any Service], logger: Logger) async throws {
        let watcher = SecondSignal()
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        try await group.run()
        withExtendedLifetime(watcher) {}
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
