// manifest-bench: generates synthetic manifests and compares `tokenctl validate` with a bare libyaml event loop.
//
//   manifest-bench generate --tokens 100000 --files 1 --out bench-data/100k-1
//   manifest-bench run bench-data/100k-1 --tokenctl .build/release/tokenctl [--repeat 3]
//
// Benchmarks/run.sh builds in release mode and runs the standard scenarios.
import CYaml
import Foundation
import TokenctlManifest

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("manifest-bench: \(message)\n".utf8))
    exit(1)
}

func option(_ name: String, in arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

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

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func yamlFiles(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix(".yaml") }.sorted().map { "\(directory)/\($0)" }
}

/// The floor: libyaml parsing every event of every file, one thread, nothing decoded.
func bareEventLoop(_ files: [String]) -> (seconds: Double, events: Int, bytes: Int) {
    var events = 0
    var bytes = 0
    let start = now()
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
        bytes += data.count
        data.withUnsafeBytes { raw in
            var parser = yaml_parser_t()
            var event = yaml_event_t()
            yaml_parser_initialize(&parser)
            yaml_parser_set_input_string(&parser, raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { fail("libyaml failed on \(file)") }
                let done = event.type == YAML_STREAM_END_EVENT
                yaml_event_delete(&event)
                events += 1
                if done { break }
            }
            yaml_parser_delete(&parser)
        }
    }
    return (now() - start, events, bytes)
}

/// Runs a command and returns its wall time, exit status and peak resident memory (KiB).
func measureChild(_ arguments: [String]) -> (seconds: Double, status: Int32, maxRSSKiB: Int) {
    var pid: pid_t = 0
    var fileActions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&fileActions, 2, "/dev/null", O_WRONLY, 0)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let start = now()
    guard posix_spawn(&pid, arguments[0], &fileActions, nil, argv, environ) == 0 else { fail("cannot run \(arguments[0])") }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    let seconds = now() - start
    posix_spawn_file_actions_destroy(&fileActions)
    return (seconds, (status >> 8) & 0xff, Int(usage.ru_maxrss))
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
        info = bareEventLoop(files)
        bare = min(bare, info.seconds)
        let child = measureChild([tokenctl, "validate", "-f", directory])
        guard child.status == 0 else { fail("tokenctl validate exited \(child.status) on \(directory)") }
        validate = min(validate, child.seconds)
        rss = max(rss, child.maxRSSKiB)
        let start = now()
        let result = ManifestLoader().load(paths: [directory], now: .init(secondsSinceEpoch: 1_795_000_000))
        inProcess = min(inProcess, now() - start)
        if result.hasErrors { fail("validation errors in \(directory)") }
    }
    var eventsOnly = Double.infinity
    for _ in 0..<repeats {
        let start = now()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
            _ = data.withUnsafeBytes { ManifestLoader().countEvents(bytes: $0.bindMemory(to: UInt8.self)) }
        }
        eventsOnly = min(eventsOnly, now() - start)
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
