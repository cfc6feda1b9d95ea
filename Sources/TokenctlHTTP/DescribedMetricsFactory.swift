import CoreMetrics
import Prometheus

/// A Prometheus metrics factory that gives every metric its `# HELP` line, so `promtool check metrics` has nothing to lint.
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry, help: ["tokenctl_ready": "1 when /readyz answers 200."]))
/// ```
///
/// swift-prometheus's own factory registers every metric with empty help; the registry takes help only when a metric is
/// made, so this factory makes them itself and leaves the rest (bucket choices, unregistering) to the stock factory.
package struct DescribedMetricsFactory: MetricsFactory {
    private let base: PrometheusMetricsFactory
    private let help: [String: String]

    /// Creates a factory over `registry`; `help` maps metric names to their help text (others get none).
    package init(registry: PrometheusCollectorRegistry, help: [String: String]) {
        base = PrometheusMetricsFactory(registry: registry)
        self.help = help
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    package func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        base.registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return base.registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return base.registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions,
                                                buckets: base.valueHistogramBuckets[label] ?? base.defaultValueHistogramBuckets)
    }

    package func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    package func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        base.registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions,
                                            buckets: base.durationHistogramBuckets[label] ?? base.defaultDurationHistogramBuckets)
    }

    package func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    package func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    package func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    package func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    package func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
