// manifest-bench: generates synthetic manifests and compares `tokenctl validate` with a bare libyaml event loop.
//
//   manifest-bench generate --tokens 100000 --files 1 --out bench-data/100k-1
//   manifest-bench run bench-data/100k-1 --tokenctl .build/release/tokenctl [--repeat 3]
//
// Benchmarks/run.sh builds in release mode and runs the standard scenarios.
import BenchmarkSupport
import Foundation
import TokenctlManifest
import TokenctlStandardDrivers

func fail(_ message: String) -> Never { Bench.fail("manifest-bench", message) }

func option(_ name: String, in arguments: [String]) -> String? { Bench.option(name) }

// MARK: Generation

func generate(tokens: Int, files: Int, into directory: String) {
    let manager = FileManager.default
    try? manager.removeItem(atPath: directory)
    do {
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        fail("cannot create \(directory): \(error)")
    }
    let header = """
        apiVersion: tokenctl/v1
        kind: Policy
        metadata: {name: default}
        spec:
          maxLifespan: 365d
          maxRotationEvery: 90d
          permanentTokens: requireException
          scopes:
            - owners: ["team-*"]
              allow: ["orders:*", "reports:read", "billing:read"]
        ---
        apiVersion: tokenctl/v1
        kind: Issuer
        metadata: {name: local}
        spec:
          type: builtin
          builtin: {prefix: tkc}
        ---
        apiVersion: tokenctl/v1
        kind: Store
        metadata: {name: vault}
        spec:
          type: encrypted-file
          encryptedFile: {path: secrets.vault, key: env:TOKENCTL_MASTER_KEY}

        """
    let scopeSets = ["[orders:read]", "[orders:read, orders:write]", "[reports:read]", "[billing:read, reports:read]"]
    let lifespans = [("90d", "30d", "24h"), ("30d", "10d", "12h"), ("365d", "90d", "7d"), ("7d", "3d", "6h")]
    let perFile = (tokens + files - 1) / max(files, 1)
    var written = 0
    for fileIndex in 0..<files {
        var text = fileIndex == 0 ? header : ""
        let count = min(perFile, tokens - written)
        text.reserveCapacity(count * 360 + header.utf8.count)
        for index in written..<(written + count) {
            let team = "team-\(String(format: "%02d", index % 50))"
            let name = "svc-\(String(format: "%06d", index))"
            let (lifespan, every, overlap) = lifespans[index % lifespans.count]
            text += """
                ---
                apiVersion: tokenctl/v1
                kind: Token
                metadata:
                  name: \(name)
                  namespace: \(team)
                  owner: \(team)
                  labels: {env: prod, tier: backend}
                  annotations: {ticket: SEC-\(index % 9000 + 1000)}
                spec:
                  issuer: local
                  scopes: \(scopeSets[index % scopeSets.count])
                  lifespan: \(lifespan)
                  rotation: {every: \(every), overlap: \(overlap)}
                  deliverTo:
                    - store: vault
                      key: \(team)/\(name)

                """
        }
        written += count
        let path = "\(directory)/tokens-\(String(format: "%02d", fileIndex)).yaml"
        guard manager.createFile(atPath: path, contents: Data(text.utf8)) else { fail("cannot write \(path)") }
    }
    print("wrote \(tokens) tokens in \(files) file(s) under \(directory)")
}

// MARK: Measurement

func yamlFiles(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix(".yaml") }.sorted().map { "\(directory)/\($0)" }
}

func run(directory: String, tokenctl: String, repeats: Int) {
    let files = yamlFiles(in: directory)
    guard !files.isEmpty else { fail("no .yaml files in \(directory); run 'generate' first") }
    var bare = Double.infinity
    var info = (seconds: 0.0, events: 0, bytes: 0)
    var validate = Double.infinity
    var inProcess = Double.infinity
    var rss = 0
    for _ in 0..<repeats {
        info = Bench.bareEventLoop(files)
        bare = min(bare, info.seconds)
        let child = Bench.measureChild([tokenctl, "validate", "-f", directory])
        guard child.status == 0 else { fail("tokenctl validate exited \(child.status) on \(directory)") }
        validate = min(validate, child.seconds)
        rss = max(rss, child.maxRSSKiB)
        let start = Bench.now()
        let result = ManifestLoader(registry: .standard).load(paths: [directory], now: .init(secondsSinceEpoch: 1_795_000_000))
        inProcess = min(inProcess, Bench.now() - start)
        if result.hasErrors { fail("validation errors in \(directory)") }
    }
    var eventsOnly = Double.infinity
    for _ in 0..<repeats {
        let start = Bench.now()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
            _ = data.withUnsafeBytes { ManifestLoader(registry: .standard).countEvents(bytes: $0.bindMemory(to: UInt8.self)) }
        }
        eventsOnly = min(eventsOnly, Bench.now() - start)
    }
    let megabytes = Double(info.bytes) / 1_048_576
    print(String(format: "%@: %d file(s), %.1f MiB, %d events", directory, files.count, megabytes, info.events))
    print(String(format: "  bare libyaml event loop (1 thread): %7.3f s  (%.1f MiB/s)", bare, megabytes / bare))
    print(String(format: "  tokenctl validate (process):       %7.3f s  ratio %.2fx  peak RSS %d MiB", validate, validate / bare, rss / 1024))
    print(String(format: "  ManifestLoader.load (in process):  %7.3f s  ratio %.2fx", inProcess, inProcess / bare))
    print(String(format: "  breakdown: tokenctl's event reader alone (1 thread): %.3f s  ratio %.2fx", eventsOnly, eventsOnly / bare))
}

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "generate":
    guard let tokens = option("--tokens", in: arguments).flatMap(Int.init), let out = option("--out", in: arguments) else {
        fail("usage: manifest-bench generate --tokens N [--files K] --out DIR")
    }
    generate(tokens: tokens, files: option("--files", in: arguments).flatMap(Int.init) ?? 1, into: out)
case "run":
    guard arguments.count >= 3 else { fail("usage: manifest-bench run DIR --tokenctl PATH [--repeat R]") }
    let tokenctl = option("--tokenctl", in: arguments) ?? ".build/release/tokenctl"
    run(directory: arguments[2], tokenctl: tokenctl, repeats: option("--repeat", in: arguments).flatMap(Int.init) ?? 3)
default:
    fail("usage: manifest-bench (generate --tokens N [--files K] --out DIR | run DIR [--tokenctl PATH] [--repeat R])")
}
