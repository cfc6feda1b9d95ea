import Foundation
import Testing

/// The man pages in docs/man and the shell completion scripts match the commands the binary has.
@Suite struct ManualTests {
    struct Command: Decodable {
        struct Argument: Decodable {
            struct Name: Decodable { var kind: String; var name: String }
            var names: [Name]?
            var shouldDisplay: Bool
        }
        var commandName: String
        var shouldDisplay: Bool?
        var arguments: [Argument]?
        var subcommands: [Command]?
    }

    struct Dump: Decodable { var command: Command }

    /// Every displayed command with its man page's file name (tokenctl.secret.get.1 for `tokenctl secret get`).
    static func pages(_ command: Command, prefix: String = "") -> [(file: String, command: Command)] {
        let name = prefix.isEmpty ? command.commandName : prefix + "." + command.commandName
        guard command.shouldDisplay ?? true, command.commandName != "help" else { return [] }
        return [(name + ".1", command)] + (command.subcommands ?? []).flatMap { pages($0, prefix: name) }
    }

    @Test func everyCommandAndOptionHasItsManPage() throws {
        let dump = try BinaryRunner.run(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let root = try JSONDecoder().decode(Dump.self, from: Data(dump.stdout.utf8)).command
        let manual = BinaryRunner.packageRoot.appendingPathComponent("docs/man")
        let regenerate = "regenerate them: swift build --product generate-manual && .build/debug/generate-manual "
            + ".build/debug/tokenctl --multi-page --date 2026-11-30 --authors 'the tokenctl authors' -o docs/man"
        let pages = Self.pages(root)
        #expect(pages.count >= 15)
        for (file, command) in pages {
            let page = try #require(try? String(contentsOf: manual.appendingPathComponent(file), encoding: .utf8),
                                    "docs/man/\(file) is missing; \(regenerate)")
            for argument in command.arguments ?? [] where argument.shouldDisplay {
                for name in argument.names ?? [] where name.kind == "long" {
                    // The whole flag: "Fl -state" must not pass for "Fl -state-dir".
                    let documented = page.components(separatedBy: "\n").contains { line in
                        line.range(of: "Fl -\(NSRegularExpression.escapedPattern(for: name.name))( |$)", options: .regularExpression) != nil
                    }
                    #expect(documented, "docs/man/\(file) lacks --\(name.name); \(regenerate)")
                }
            }
        }
    }

    @Test(arguments: ["bash", "zsh", "fish"]) func completionScripts(shell: String) throws {
        let script = try BinaryRunner.run(["--generate-completion-script", shell])
        #expect(script.status == 0, "\(script.stderr)")
        for command in ["apply", "plan", "reconcile", "status"] { #expect(script.stdout.contains(command)) }
    }
}

/// Help texts render cleanly.
@Suite struct HelpTextTests {
    @Test func execHelpIsHelpNotACommand() throws {
        let help = try BinaryRunner.run(["exec", "--help"])
        #expect(help.status == 0, "\(help.stderr)")
        #expect(help.stdout.contains("USAGE: tokenctl exec"))
    }

    @Test func noHelpShowsStrayBackslashes() throws {
        for command in ["serve", "apply", "plan", "reconcile", "status", "exec", "audit", "validate"] {
            let help = try BinaryRunner.run([command, "--help"])
            #expect(help.status == 0)
            #expect(!help.stdout.contains("\\"), "\(command) --help shows a backslash")
        }
    }
}
