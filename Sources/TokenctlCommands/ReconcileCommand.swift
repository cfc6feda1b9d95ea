import ArgumentParser
import TokenctlBuiltinIssuer
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TokenctlController
import TokenctlHTTP
import TokenctlModel
import TokenctlNotify
import TokenctlReconciler

/// `tokenctl reconcile`: one plan-and-apply pass (cron, CI), or with `--watch` the long-running controller.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Plan and apply without confirmation: one pass (cron jobs, CI), or continuously with --watch.",
        discussion: """
            Without --watch: one pass; exit codes as apply. With --watch: a controller that re-reads the manifests \
            and reconciles at every --interval (jittered) and whenever a rotation, retirement or expiry falls due; \
            failing tokens are retried with backoff and reported, never dropped. --listen serves /metrics, /healthz \
            and /readyz (and /introspect with --serve-introspection). SIGTERM or SIGINT finish the change in \
            flight, release the state lock and exit 0; a second signal exits at once.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @OptionGroup var locking: LockOptions

    @Flag(help: "Ask issuers for their inventories first (ghosts, credentials missing at the issuer).")
    var refresh = false

    @Option(help: "Why this pass runs; recorded in the audit log (one pass only).")
    var reason: String?

    @OptionGroup var retirement: RetirementOptions

    @Flag(help: "One pass only: apply although the state is empty while issuers or stores show earlier work (see apply).")
    var startFromEmptyState = false

    @Option(help: "With --watch: how long the manifest files must be left unchanged before the controller acts on them, e.g. 3s (default; 0s: at once).",
            transform: DurationArgument.parser("--settle"))
    var settle = TokenDuration(seconds: 3)

    /// Refused: kept (hidden) only to explain why, since reconcile mints real credentials on the real clock.
    @Option(help: .hidden)
    var at: String?

    @Flag(help: "Keep running as a controller.")
    var watch = false

    @Option(help: "With --watch: the longest time between passes, e.g. 5m (default; each is jittered by ±10%).",
            transform: DurationArgument.parser("--interval", allowZero: false))
    var interval = TokenDuration(seconds: 300)

    @Option(help: "With --watch: serve /metrics, /healthz and /readyz on HOST:PORT, e.g. 127.0.0.1:9090 or :9090.")
    var listen: String?

    @Flag(help: "With --listen: also answer POST /introspect (RFC 7662) for the builtin issuer's tokens.")
    var serveIntrospection = false

    @Flag(help: "With --listen: also export tokenctl_token_expiration_timestamp_seconds, one series per token (namespace, name); size your Prometheus for it.")
    var metricsPerToken = false

    @OptionGroup var limits: ServerLimitOptions

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if at != nil { throw ValidationError(ClockOption.refusedOnApply("reconcile")) }
        try checkReason(reason)
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH.") }
        if !watch && (listen != nil || serveIntrospection) {
            throw ValidationError("--listen and --serve-introspection need --watch (for the builtin issuer alone, use tokenctl serve).")
        }
        if metricsPerToken && listen == nil { throw ValidationError("--metrics-per-token needs --listen HOST:PORT.") }
        if serveIntrospection && listen == nil { throw ValidationError("--serve-introspection needs --listen HOST:PORT.") }
        if let listen { _ = try ListenAddress(parsing: listen) }
    }

    func run() async throws {
        guard watch else { return try await runOnce() }
        let logger = Logger(label: "tokenctl.controller")
        let registry = ControllerRunner.bootstrapMetrics()
        let seconds = Double(interval.seconds)
        let directory = manifests.stateDirectory
        let health = ControllerHealth(staleAfter: max(2 * seconds + 60, 120))
        let board = NotifierBoard()
        let pass = ControllerPass(paths: manifests.paths, directory: directory, stateURL: manifests.stateURL, registry: .standard,
                                  refresh: refresh, retirementGuard: retirement.retirementGuard,
                                  newManifestRoots: retirement.newManifestRoots, settle: Double(settle.seconds), logger: logger,
                                  checkpoint: FaultInjection.checkpoint,
                                  lastUsed: { BuiltinAuthority.lastUsedTimes($0, directory: directory) }, board: board)
        let statusFile = StatusFileWriter(directory: directory)
        let (delivery, webhooks) = NoticeSending.delivery(logger: logger)
        let stateURL = manifests.stateURL
        var services: [any Service] = [NoticeDispatcher(source: { (board.current.notifiers, board.current.leading) },
                                                        openOutbox: { try NoticeSending.outbox(directory: directory, url: stateURL) },
                                                        delivery: delivery, logger: logger)]
        if let listen {
            var introspection: Introspection?
            if serveIntrospection {
                let (responder, usage, index) = try orExit { () throws(Introspection.SetupError) in try Introspection.open(directory: directory, requireExisting: false, logger: logger) }
                introspection = responder
                services += [usage, index]
            }
            services.insert(HTTPEndpoint.service(address: try ListenAddress(parsing: listen), registry: registry,
                                                 readiness: { health.readiness(at: Date().timeIntervalSince1970) },
                                                 introspection: introspection, limits: limits.limits, logger: logger, onListening: ControllerRunner.announcer(logging.logFormat)),
                            at: 0)
        }
        services.append(WatchService(pass: { await pass.run($0) }, schedule: WakeSchedule(interval: seconds), health: health,
                                     metrics: ControllerMetrics(perToken: metricsPerToken), logger: logger, onPass: { statusFile.write($0) },
                                     retries: RetryBook(restoring: ControllerStatusFile.read(directory)?.needsAttention ?? [])))
        logger.notice("controller started", metadata: ["manifests": "\(manifests.paths)", "state": "\(directory)", "interval": "\(interval)"])
        do {
            try await ControllerRunner.run(services, logger: logger)
        } catch {
            await webhooks.shutdown()
            throw error
        }
        await pass.resign()
        await webhooks.shutdown()
    }

    /// One pass: the apply workflow from the manifests, without confirmation.
    private func runOnce() async throws {
        try await ApplyWorkflow(
            command: "reconcile", manifestPaths: manifests.paths, stateDirectory: manifests.stateDirectory, stateURL: manifests.stateURL,
            source: .manifests, autoApprove: true, lockTimeout: locking.lockTimeout, reason: reason, refresh: refresh,
            retirementGuard: retirement.retirementGuard, startFromEmptyState: startFromEmptyState,
            newManifestRoots: retirement.newManifestRoots).run()
    }
}
