import ArgumentParser
import Foundation
import TokenctlExec

/// `tokenctl plugin`: tools for exec plugins.
struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plugin", abstract: "Tools for exec plugins.",
                                                    subcommands: [PluginCheckCommand.self])
}

/// `tokenctl plugin check -f PATH ISSUER`: a throwaway credential's whole life through a plugin, against its backend.
struct PluginCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Drive an exec issuer's plugin through a throwaway credential's whole life against its real backend.",
        discussion: "Steps: capabilities, issue, idempotent retry, lookup, list, verify (if offered), revoke, list again. "
            + "Exit codes: 0 every step passed, 1 a step failed or the plugin cannot be run."
    )

    @OptionGroup var manifests: ManifestOptions

    @Argument(help: "The exec issuer to check.")
    var issuer: String

    @Option(name: .customLong("scope"), help: "A scope of the throwaway credential (repeatable; default: those of the issuer's first token).")
    var scopes: [String] = []

    func run() async throws {
        let now = ClockOption.now()
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true)
        let check: PluginCheck
        do {
            check = try PluginCheck(issuer: issuer, in: loaded.manifests, scopes: scopes, environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        print("Checking exec issuer '\(issuer)' (\(check.program)):")
        let passed = await check.run(now: now) { print($0) }
        print(passed ? "Every step passed." : "A step failed; docs/plugins.md says what each operation must do.")
        if !passed { throw ExitCode(1) }
    }
}
