import Foundation
import Testing

/// Feedback on long work: a status line on a terminal, a line per change, a running count for large plans.
@Suite struct ProgressTests {
    typealias Workspace = ApplyCommandTests.Workspace

    static func tokens(_ count: Int) -> String {
        ManifestText.header(dotenv: false) + (0..<count).map { index in
            """
            ---
            apiVersion: tokenctl/v1
            kind: Token
            metadata: {name: svc-\(index), namespace: apps, owner: team-a}
            spec: {issuer: local, scopes: [orders:read], lifespan: 30d, deliverTo: [{store: vault}]}

            """
        }.joined()
    }

    @Test func aTerminalSeesAStatusLineForWorkOverASecondAndAPipeDoesNot() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.tokens(20_000))
        // `script` gives the command a terminal; its output is what the terminal received. The line appears after
        // TOKENCTL_PROGRESS_AFTER seconds (1 by default), shortened so that the test does not depend on machine speed.
        let onTerminal = try BinaryRunner.runProgram("/usr/bin/script", ["-qec", "\(BinaryRunner.executable) validate -f \(workspace.root)",
                                                                         "/dev/null"], environment: ["TOKENCTL_PROGRESS_AFTER": "0.01"])
        #expect(onTerminal.stdout.contains("Reading manifests… 0s"), "\(onTerminal.stdout.suffix(300))")
        #expect(onTerminal.stdout.contains("\r\u{1B}[K"), "the status line is erased when the work ends")
        let piped = try workspace.run(["validate", "-f", "DIR"], environment: ["TOKENCTL_PROGRESS_AFTER": "0.01"])
        #expect(piped.status == 0)
        #expect(!piped.stderr.contains("Reading manifests") && !piped.stdout.contains("Reading manifests"))
    }

    @Test func applyPrintsALinePerChangeOrARunningCountForLargePlans() throws {
        let workspace = Workspace()
        defer { workspace.remove() }
        workspace.write(Self.tokens(3))
        let small = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(small.status == 0, "\(small.stderr)")
        for index in 0..<3 { #expect(small.stdout.contains("  done    issue     apps/svc-\(index) v1"), "\(small.stdout)") }
        workspace.write(Self.tokens(120))
        let large = try workspace.run(["apply", "-f", "DIR", "--auto-approve"])
        #expect(large.status == 0, "\(large.stderr)")
        #expect(large.stdout.contains("  … 117 of 117 done"), "\(large.stdout.suffix(500))")
        #expect(!large.stdout.contains("  done    issue"), "no line per token in a large plan")
    }
}
