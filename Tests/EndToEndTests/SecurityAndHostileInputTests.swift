import Foundation
import Testing

/// Secrets planted in manifests never reach any output; hostile files are refused in bounded time and memory.
@Suite struct SecurityAndHostileInputTests {
    static let canaries = [
        "ghp_CANARYq7Zx2Lw9Rt4Yp6Bn1Cd5Fg7Hj0Ks",
        "glpat-CANARYxY7wV6uT5sR4qP3",
        "AKIACANARY7Q3W2E1R0T",
        "CANARYq8Wm3Zr5Tx7Vb2Nk4Lp6Jh9Gf1Ds",
    ]

    @Test func plantedSecretsNeverReachOutput() throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        BinaryRunner.write("""
            apiVersion: tokenctl/v1
            kind: Token
            metadata:
              name: leaky
              owner: team-payments
              annotations: {note: "rotated \(Self.canaries[0])"}
              labels: {\(Self.canaries[3]): x}
            spec:
              issuer: local
              scopes: [orders:read]
              lifespan: \(Self.canaries[2])
              deliverTo: [{store: vault, key: \(Self.canaries[1])}]
              secretValue: \(Self.canaries[3])
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: vault}
            spec: {type: encrypted-file, encryptedFile: {path: s.vault, key: \(Self.canaries[0])}}
            """, to: dir + "/leaky.yaml")
        for arguments in [["validate", "-f", dir], ["validate", "-f", dir, "--json"]] {
            let outcome = try BinaryRunner.run(arguments)
            #expect(outcome.status == 1)
            let reported = outcome.stderr.contains("looks like a secret") || outcome.stdout.contains("looks like a secret")
            #expect(reported)
            // Compare outside #expect, so that a failure never prints the output that holds the canary.
            for canary in Self.canaries {
                let fragment = String(canary.dropFirst(4).prefix(12))
                let leaksToStdout = outcome.stdout.contains(canary) || outcome.stdout.contains(fragment)
                let leaksToStderr = outcome.stderr.contains(canary) || outcome.stderr.contains(fragment)
                #expect(!leaksToStdout, "stdout leaks canary \(canary.prefix(4))…")
                #expect(!leaksToStderr, "stderr leaks canary \(canary.prefix(4))…")
            }
        }
    }

    static func hostileFiles() -> [(String, [UInt8])] {
        var bomb = "apiVersion: tokenctl/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  scopes:\n"
        bomb += "    - owners: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n      allow: [x]\n"
        for level in 1...9 {
            bomb += "    - owners: &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", "))]\n      allow: [x]\n"
        }
        var huge = Array("apiVersion: tokenctl/v1\nkind: Token\nmetadata: {name: ".utf8)
        huge += [UInt8](repeating: UInt8(ascii: "a"), count: 50 << 20)
        return [
            ("bomb.yaml", Array(bomb.utf8)),
            ("deep.yaml", Array(("kind: Token\nmetadata: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8)),
            ("huge.yaml", huge),
            ("latin1.yaml", Array("kind: Token\nmetadata: {name: ".utf8) + [0xE9, 0xFF, 0x7D]),
            ("binary.yaml", (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7919) }),
            ("empty.yaml", []),
            ("comments.yaml", Array("# only\n# comments\n".utf8)),
        ]
    }

    @Test(arguments: hostileFiles().map(\.0))
    func hostileInputIsRefusedQuicklyInLittleMemory(_ name: String) throws {
        let dir = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try #require(Self.hostileFiles().first { $0.0 == name }?.1)
        BinaryRunner.write(bytes, to: dir + "/" + name)
        let outcome = try BinaryRunner.run(["validate", "-f", dir + "/" + name])
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("\(name):") && outcome.stderr.contains("error:"), "\(outcome.stderr.prefix(500))")
        #expect(outcome.stderr.utf8.count < 20_000, "diagnostics should stay short")
        let measured = try BinaryRunner.peakMemory(["validate", "-f", dir + "/" + name])
        #expect(measured.status == 1)
        #expect(measured.seconds < 2, "took \(measured.seconds) s")
        #expect(measured.maxRSSMiB < 200, "peak memory \(measured.maxRSSMiB) MiB")
    }
}
