import ArgumentParser
import Foundation

/// The `tokenctl` root command.
package struct Tokenctl: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "tokenctl",
        abstract: "Declarative reconciliation of API tokens: plan, apply, rotate, retire.",
        version: "0.1.0",
        subcommands: [Validate.self, PlanCommand.self, ApplyCommand.self, ReconcileCommand.self, ShowCommand.self, StatusCommand.self, ForecastCommand.self, RotateCommand.self,
                      VerifyCommand.self, ServeCommand.self, SecretCommand.self, ExecCommand.self, AuditCommand.self,
                      StateCommand.self, RekeyCommand.self, PluginCommand.self, NoticesCommand.self]
    )

    package init() {}

    /// The file-creation mask tokenctl was started with, restored for the commands `tokenctl exec` runs.
    nonisolated(unsafe) static var inheritedUmask: mode_t = 0o022

    /// Runs the command line, mapping every failure onto tokenctl's exit codes (0, 1, 2, 3).
    package static func runMain() async -> Never {
        // Every file tokenctl creates is private to its owner, including those SQLite makes beside a database
        // (state.db-wal, state.db-shm), which would otherwise follow the caller's umask.
        inheritedUmask = umask(0o077)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch {
            let code = exitCode(for: error)
            if code.rawValue != 0 && !(error is ExitCode) {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            } else if code.rawValue == 0, !(error is ExitCode) {
                print(fullMessage(for: error))
            }
            // Usage errors are errors (1); tokenctl's own codes pass through.
            Foundation.exit([0, 1, 2, 3].contains(code.rawValue) ? code.rawValue : 1)
        }
    }
}

/// Whether to colour output: only on a terminal, and never when NO_COLOR is set.
func useColors(fileDescriptor: Int32) -> Bool {
    isatty(fileDescriptor) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
}
