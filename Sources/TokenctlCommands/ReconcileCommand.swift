import ArgumentParser

/// `tokenctl reconcile`: one plan-and-apply pass without questions, for cron jobs and CI.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "One pass of plan and apply without confirmation (for cron jobs and CI). Exit codes as apply.",
        discussion: "The long-running controller (--watch, metrics, health endpoints) is not built yet."
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(help: "How long to wait for the state lock, e.g. 30s.")
    var lockTimeout: String = "0s"

    @Flag(help: "Ask issuers for their inventories first (ghosts, credentials missing at the issuer).")
    var refresh = false

    @Option(help: "Why this pass runs; recorded in the audit log.")
    var reason: String?

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Missing manifests: pass -f PATH.") }
    }

    func run() async throws {
        var arguments = manifests.paths.flatMap { ["-f", $0] } + ["--auto-approve", "--lock-timeout", lockTimeout]
        if let stateDir = manifests.stateDir { arguments += ["--state-dir", stateDir] }
        if refresh { arguments.append("--refresh") }
        if let reason { arguments += ["--reason", reason] }
        var apply = try ApplyCommand.parse(arguments)
        try await apply.run()
    }
}
