import Foundation
import Testing

/// The README's walkthrough, run as written: every output it shows appears, and the clone is left unmodified.
@Suite struct WalkthroughTests {
    /// The walkthrough's shell block, with the build step replaced by the binary under test.
    static func script() throws -> [String] {
        let readme = try String(contentsOf: BinaryRunner.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        let heading = try #require(lines.firstIndex(of: "### A walkthrough"))
        let open = try #require(lines[heading...].firstIndex(of: "```sh"))
        let close = try #require(lines[(open + 1)...].firstIndex(of: "```"))
        return Array(lines[(open + 1)..<close])
    }

    /// A README output line ("#   text", "…" for what varies) as a pattern over whitespace-collapsed output.
    static func pattern(_ line: String) -> String {
        let text = collapsed(String(line.dropFirst(1)))
        return "^" + text.components(separatedBy: "…").map(NSRegularExpression.escapedPattern(for:)).joined(separator: ".*") + "$"
    }

    static func collapsed(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func gitStatus() -> String? {
        let outcome = try? BinaryRunner.runProgram("/usr/bin/git", ["-C", BinaryRunner.packageRoot.path, "status", "--porcelain"])
        return outcome?.status == 0 ? outcome?.stdout : nil
    }

    @Test func theWalkthroughPrintsWhatTheReadmeSaysAndLeavesTheCloneUnmodified() throws {
        var script = try Self.script()
        let build = try #require(script.first)
        #expect(build.hasPrefix("swift build"), "the walkthrough starts by building: \(build)")
        let binaries = URL(fileURLWithPath: BinaryRunner.executable).deletingLastPathComponent().path
        script[0] = "export PATH=\"\(binaries):$PATH\""
        let expected = script.filter { $0.hasPrefix("#   ") }
        #expect(expected.count >= 6, "the walkthrough shows what its commands print")

        let scratch = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let before = Self.gitStatus()
        let body = "set -eu\nunset TOKENCTL_MASTER_KEY\ncd \"$0\"\n" + script.joined(separator: "\n")
        let outcome = try BinaryRunner.runProgram("/bin/bash", ["-c", body, BinaryRunner.packageRoot.path], environment: ["TMPDIR": scratch])
        #expect(outcome.status == 0, "\(outcome.stdout.suffix(1500))\(outcome.stderr.suffix(1500))")

        let printed = (outcome.stdout + outcome.stderr).components(separatedBy: "\n").map(Self.collapsed)
        for line in expected {
            let pattern = Self.pattern(line)
            #expect(printed.contains { $0.range(of: pattern, options: .regularExpression) != nil },
                    "the README says the walkthrough prints '\(line)'; it printed:\n\(outcome.stdout)")
        }
        #expect(Self.gitStatus() == before, "the walkthrough modified the clone")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: scratch)) == [], "the walkthrough leaves its copy behind")
    }
}
