import Foundation
import Testing

/// The deployment recipes in `Examples/systemd`, `Examples/kubernetes` and `Examples/github-actions`, exercised as far
/// as a machine without systemd, a cluster or a Docker engine allows: every YAML file parses; the units pass
/// `systemd-analyze verify` (when installed); the tokenctl command lines of the units, the Deployment, the CronJob and
/// the workflow run for real against a scratch state (paths mapped, ports made ephemeral); the workflow's plan, comment
/// and apply steps run in bash; the Deployment's probes and metrics annotation match what the controller serves.
@Suite struct RecipeTests {
    static let examples = BinaryRunner.packageRoot.appendingPathComponent("Examples").path
    static let systemd = examples + "/systemd"
    static let kubernetes = examples + "/kubernetes"
    static let githubActions = examples + "/github-actions"

    static func masterKey() -> String { Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() }

    static func which(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    // MARK: YAML through PyYAML

    /// Fails (never skips) when PyYAML is missing: the recipes' YAML must be checked by a real YAML parser.
    static func requirePyYAML() throws {
        let probe = try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c", "import yaml"])
        try #require(probe.status == 0, "python3 with PyYAML is needed to check the recipes (apt-get install python3-yaml): \(probe.stderr)")
    }

    /// Every document of a YAML file, parsed by PyYAML's safe loader and handed over as JSON (keys as strings, so the
    /// workflow's `on:` — YAML 1.1's boolean true — arrives as "true").
    static func documents(_ path: String) throws -> [Any] {
        try requirePyYAML()
        let script = """
            import json, sys, yaml
            def keys(value):
                if isinstance(value, dict):
                    return {("on" if k is True else str(k)): keys(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [keys(v) for v in value]
                return value
            with open(sys.argv[1]) as f:
                print(json.dumps([keys(d) for d in yaml.safe_load_all(f)], default=str))
            """
        let outcome = try BinaryRunner.runProgram("/usr/bin/env", ["python3", "-c", script, path])
        try #require(outcome.status == 0, "\(path) is not valid YAML:\n\(outcome.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [Any])
    }

    static func document(_ path: String) throws -> [String: Any] {
        let all = try documents(path)
        try #require(all.count == 1, "\(path) should hold one document")
        return try #require(all[0] as? [String: Any])
    }

    static func yamlFiles(under directory: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: directory)
        var files: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            if relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") { files.append(directory + "/" + relative) }
        }
        return files.sorted()
    }

    // MARK: systemd units

    /// A unit file's directives: section → [(key, value)], in order, keeping repeated keys.
    static func unit(_ name: String) throws -> [String: [(String, String)]] {
        let text = try String(contentsOfFile: systemd + "/" + name, encoding: .utf8)
        var sections: [String: [(String, String)]] = [:]
        var current = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast())
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            sections[current, default: []].append((String(line[..<equals]), String(line[line.index(after: equals)...])))
        }
        return sections
    }

    static func values(_ unit: [String: [(String, String)]], _ section: String, _ key: String) -> [String] {
        (unit[section] ?? []).filter { $0.0 == key }.map(\.1)
    }

    /// `Environment=A=1 B=2` lines as a dictionary.
    static func environment(_ unit: [String: [(String, String)]]) -> [String: String] {
        var result: [String: String] = [:]
        for line in values(unit, "Service", "Environment") {
            for assignment in line.split(separator: " ") {
                let parts = assignment.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
            }
        }
        return result
    }

    /// The tokenctl arguments of a unit's single ExecStart= line (the binary itself dropped).
    static func execStart(_ unit: [String: [(String, String)]]) throws -> [String] {
        let lines = values(unit, "Service", "ExecStart")
        try #require(lines.count == 1, "one ExecStart= expected, found \(lines)")
        let words = lines[0].split(separator: " ").map(String.init)
        try #require(words.first?.hasSuffix("/tokenctl") == true, "ExecStart= does not run tokenctl: \(lines[0])")
        return Array(words.dropFirst())
    }

    // MARK: Running a recipe's command line

    /// A scratch place for a recipe's command: manifests in `manifests/`, state in `state/`.
    struct Scratch {
        let workspace = ApplyCommandTests.Workspace()
        var root: String { workspace.root }
        var manifests: String { root + "/manifests" }
        var state: String { root + "/state" }

        init() {
            try? FileManager.default.createDirectory(atPath: root + "/manifests", withIntermediateDirectories: true)
        }

        /// A builtin issuer, an encrypted store (relative path, beside the manifest) and one token.
        func writeManifests(tokens: [String] = ["web"]) {
            BinaryRunner.write(ManifestText.header(dotenv: false) + tokens.map { RecipeTests.token($0) }.joined(), to: manifests + "/tokens.yaml")
        }

        func remove() { workspace.remove() }
    }

    static func token(_ name: String, extra: String = "") -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: apps, owner: team-apps\(extra)}
        spec:
          issuer: local
          scopes: [read]
          lifespan: 30d
          rotation: {every: 20d, overlap: 1d}
          deliverTo: [{store: vault, key: apps/\(name)}]

        """
    }

    /// A recipe's tokenctl arguments with its paths mapped into the scratch directory and its port made ephemeral.
    /// Fails when the command lacks `-f` or `--state-dir`: a recipe must never rely on state beside the manifests.
    static func mapped(_ arguments: [String], into scratch: Scratch, expectedManifests: String, expectedState: String) throws -> [String] {
        var result: [String] = []
        var sawManifests = false, sawState = false
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            result.append(argument)
            if index + 1 < arguments.count {
                let value = arguments[index + 1]
                switch argument {
                case "-f", "--filename":
                    #expect(value == expectedManifests)
                    result.append(scratch.manifests)
                    sawManifests = true
                    index += 1
                case "--state-dir":
                    #expect(value == expectedState)
                    result.append(scratch.state)
                    sawState = true
                    index += 1
                case "--listen":
                    let host = value.split(separator: ":").dropLast().joined(separator: ":")
                    result.append("\(host.isEmpty ? "127.0.0.1" : host):0")
                    index += 1
                default: break
                }
            }
            index += 1
        }
        #expect(sawManifests, "\(arguments) names no manifests with -f")
        #expect(sawState, "\(arguments) names no --state-dir")
        return result
    }

    /// Runs a `reconcile --watch` command line as the recipe gives it, waits until it is ready, checks the
    /// endpoints, stops it with SIGTERM (as systemd and the kubelet do) and returns its stderr.
    static func runController(_ arguments: [String], environment: [String: String], scratch: Scratch,
                              paths: (health: String, ready: String, metrics: String) = ("/healthz", "/readyz", "/metrics")) async throws -> String {
        let controller = try ControllerProcess(arguments, environment: environment, scratch: scratch.root)
        try controller.waitUntilListening()
        let ready = await waitForAsync(timeout: 30) { controller.request("GET", paths.ready).status == 200 ? true : nil }
        #expect(ready == true, "\(paths.ready) never answered 200; stderr:\n\(controller.stderr)")
        #expect(controller.request("GET", paths.health).status == 200)
        let metrics = controller.request("GET", paths.metrics)
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("tokenctl_tokens"), "no tokenctl metrics at \(paths.metrics)")
        #expect(controller.request("GET", "/no-such-endpoint").status == 404, "the endpoint answers anything; the probe checks prove nothing")
        controller.signal(SIGTERM)
        #expect(controller.waitForExit(timeout: 30) == 0, "SIGTERM did not stop the controller cleanly; stderr:\n\(controller.stderr)")
        return controller.stderr
    }

    /// With `--log-format json`, every log line on stderr is a JSON object (the one-line "listening on" notice aside).
    static func expectJSONLogs(_ stderr: String) {
        let lines = stderr.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("tokenctl: listening on ") }
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["message"] != nil, "not a JSON log line: \(line)")
        }
        #expect(stderr.contains(#""message":"controller started""#))
    }

    // MARK: (a) every YAML file parses

    @Test func everyRecipeYAMLFileParses() throws {
        try Self.requirePyYAML()
        let files = Self.yamlFiles(under: Self.kubernetes) + Self.yamlFiles(under: Self.githubActions)
        let names = Set(files.map { ($0 as NSString).lastPathComponent })
        #expect(names.isSuperset(of: ["deployment.yaml", "pvc.yaml", "cronjob.yaml", "kustomization.yaml", "tokens.yaml", "tokenctl.yml"]),
                "recipe files missing: \(names)")
        for file in files {
            let documents = try Self.documents(file)
            #expect(!documents.isEmpty, "\(file) holds no document")
            for document in documents {
                let object = try #require(document as? [String: Any], "\(file): a document is not a mapping")
                if file.hasPrefix(Self.kubernetes) {
                    #expect(object["apiVersion"] is String && object["kind"] is String, "\(file): a document lacks apiVersion or kind")
                }
            }
        }
        // The example tokenctl manifests are valid tokenctl manifests too.
        let validate = try BinaryRunner.run(["validate", "-f", Self.kubernetes + "/manifests"])
        #expect(validate.status == 0, "\(validate.stdout)\(validate.stderr)")
    }

    @Test(.enabled(if: which("kubectl") != nil)) func kustomizationRendersTheControllerWithItsGeneratedConfigMap() throws {
        let outcome = try BinaryRunner.runProgram(try #require(Self.which("kubectl")), ["kustomize", Self.kubernetes])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let scratch = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        BinaryRunner.write(outcome.stdout, to: scratch + "/rendered.yaml")
        let objects = try Self.documents(scratch + "/rendered.yaml").compactMap { $0 as? [String: Any] }
        let kinds = objects.compactMap { $0["kind"] as? String }.sorted()
        #expect(kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim"])
        let configMap = try #require(objects.first { $0["kind"] as? String == "ConfigMap" })
        let configMapName = try #require((configMap["metadata"] as? [String: Any])?["name"] as? String)
        #expect(configMapName.hasPrefix("tokenctl-manifests-"), "the generated ConfigMap carries no content hash: \(configMapName)")
        #expect((configMap["data"] as? [String: Any])?["tokens.yaml"] != nil)
        let deployment = try #require(objects.first { $0["kind"] as? String == "Deployment" })
        let volumes = try #require(Self.podSpec(deployment)["volumes"] as? [[String: Any]])
        let mounted = volumes.compactMap { ($0["configMap"] as? [String: Any])?["name"] as? String }
        #expect(mounted == [configMapName], "the Deployment does not mount the generated ConfigMap")
        for object in objects {
            #expect((object["metadata"] as? [String: Any])?["namespace"] == nil, "the set should stay namespace-agnostic")
        }
    }

    // MARK: systemd

    @Test func systemdUnitsCarryTheHardeningAndTheirCommandsRun() async throws {
        let service = try Self.unit("tokenctl.service")
        let oneshot = try Self.unit("tokenctl-reconcile.service")
        let timer = try Self.unit("tokenctl-reconcile.timer")

        for (name, unit) in [("tokenctl.service", service), ("tokenctl-reconcile.service", oneshot)] {
            func one(_ key: String) -> String? { Self.values(unit, "Service", key).last }
            #expect(one("User") == "tokenctl", "\(name)")
            #expect(one("ProtectSystem") == "strict", "\(name)")
            #expect(one("NoNewPrivileges") == "yes", "\(name)")
            #expect(one("PrivateTmp") == "yes", "\(name)")
            #expect(one("ProtectHome") == "yes", "\(name)")
            #expect(one("EnvironmentFile") == "/etc/tokenctl/tokenctl.env", "\(name)")
            #expect(one("KillSignal") == "SIGTERM", "\(name)")
            #expect(one("TimeoutStopSec") != nil, "\(name)")
            // The state directory is the one place written: it must be writable under ProtectSystem=strict.
            let arguments = try Self.execStart(unit)
            let stateDir = try #require(arguments.firstIndex(of: "--state-dir").map { arguments[$0 + 1] })
            #expect(Self.values(unit, "Service", "ReadWritePaths").contains(stateDir), "\(name): \(stateDir) is not in ReadWritePaths=")
            #expect(one("StateDirectory").map { "/var/lib/" + $0 } == stateDir, "\(name)")
        }
        #expect(Self.values(service, "Service", "Restart") == ["on-failure"])
        #expect(Self.values(oneshot, "Service", "Type") == ["oneshot"])
        #expect(Self.values(oneshot, "Unit", "Conflicts") == ["tokenctl.service"], "the timer's pass must not run beside the controller")
        #expect(Self.values(timer, "Timer", "Persistent") == ["true"])
        #expect(!Self.values(timer, "Timer", "RandomizedDelaySec").isEmpty)
        #expect(Self.values(timer, "Timer", "OnCalendar") == ["*:0/15"])
        #expect(Self.values(timer, "Timer", "Unit") == ["tokenctl-reconcile.service"])

        // The controller's ExecStart=, run as written (paths mapped into a scratch directory, port ephemeral).
        let watchArguments = try Self.execStart(service)
        #expect(Array(watchArguments.prefix(2)) == ["reconcile", "--watch"])
        #expect(watchArguments.contains("--listen") && watchArguments.contains("--log-format"))
        let scratch = Scratch()
        defer { scratch.remove() }
        scratch.writeManifests()
        let key = Self.masterKey()
        let environment = Self.environment(service).merging(["TOKENCTL_MASTER_KEY": key]) { $1 }
        #expect(environment["TOKENCTL_LOG_LEVEL"] == "info")
        let stderr = try await Self.runController(
            try Self.mapped(watchArguments, into: scratch, expectedManifests: "/etc/tokenctl/manifests", expectedState: "/var/lib/tokenctl"),
            environment: environment, scratch: scratch)
        Self.expectJSONLogs(stderr)
        let status = try BinaryRunner.run(["status", "--state-dir", scratch.state])
        #expect(status.stdout.contains("1 token: 1 ok."), "\(status.stdout)")
        let secret = try BinaryRunner.run(["secret", "get", "-f", scratch.manifests, "--state-dir", scratch.state, "apps/web"],
                                          environment: ["TOKENCTL_MASTER_KEY": key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("tkc_"))
        #expect(!stderr.contains(secret))

        // The one-shot ExecStart=: a pass that finds nothing to do (the controller did it), then a pass that issues.
        let oneshotArguments = try Self.execStart(oneshot)
        #expect(oneshotArguments.first == "reconcile" && !oneshotArguments.contains("--watch"))
        #expect(oneshotArguments.contains("--lock-timeout"))
        let mapped = try Self.mapped(oneshotArguments, into: scratch, expectedManifests: "/etc/tokenctl/manifests", expectedState: "/var/lib/tokenctl")
        let idle = try BinaryRunner.run(mapped, environment: Self.environment(oneshot).merging(["TOKENCTL_MASTER_KEY": key]) { $1 })
        #expect(idle.status == 0, "\(idle.stdout)\(idle.stderr)")
        #expect(idle.stdout.contains("No changes."))
        scratch.writeManifests(tokens: ["web", "api"])
        let pass = try BinaryRunner.run(mapped, environment: Self.environment(oneshot).merging(["TOKENCTL_MASTER_KEY": key]) { $1 })
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        #expect(pass.stdout.contains("+ issue     apps/api v1"))
        #expect(pass.stdout.contains("Apply complete: 1 change applied, 0 failed."), "\(pass.stdout)")
    }

    @Test(.enabled(if: which("systemd-analyze") != nil)) func systemdAnalyzeAcceptsTheUnits() throws {
        let analyze = try #require(Self.which("systemd-analyze"))
        let scratch = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let names = ["tokenctl.service", "tokenctl-reconcile.service", "tokenctl-reconcile.timer"]
        for name in names {
            // verify checks that ExecStart='s program exists: point it at the binary under test.
            let text = try String(contentsOfFile: Self.systemd + "/" + name, encoding: .utf8)
            BinaryRunner.write(text.replacingOccurrences(of: "/usr/local/bin/tokenctl", with: BinaryRunner.executable), to: scratch + "/" + name)
        }
        let verify = try BinaryRunner.runProgram(analyze, ["verify"] + names.map { scratch + "/" + $0 })
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stderr.isEmpty && verify.stdout.isEmpty, "systemd-analyze verify complains:\n\(verify.stdout)\(verify.stderr)")

        // The hardening, scored offline (systemd 252+): "OK" is below 4.0; these units score about 1.4.
        for name in ["tokenctl.service", "tokenctl-reconcile.service"] {
            let security = try BinaryRunner.runProgram(analyze, ["security", "--offline=true", "--no-pager", scratch + "/" + name])
            guard security.status == 0 || security.stdout.contains("Overall exposure level") else { continue }  // older systemd
            let line = try #require(security.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") })
            let score = line.split(separator: ":").last.flatMap { Double($0.split(separator: " ").first ?? "") }
            #expect((score ?? 10) < 2.5, "\(name): \(line)")
        }
    }

    // MARK: Kubernetes

    static func podSpec(_ workload: [String: Any]) -> [String: Any] {
        var spec = workload["spec"] as? [String: Any] ?? [:]
        if let job = spec["jobTemplate"] as? [String: Any] { spec = job["spec"] as? [String: Any] ?? [:] }
        return ((spec["template"] as? [String: Any])?["spec"] as? [String: Any]) ?? [:]
    }

    static func container(_ workload: [String: Any]) throws -> [String: Any] {
        let containers = try #require(podSpec(workload)["containers"] as? [[String: Any]])
        try #require(containers.count == 1)
        return containers[0]
    }

    /// The environment a container gets: its literal values, and the master key where a secretKeyRef asks for it.
    static func environment(_ container: [String: Any], masterKey: String) throws -> [String: String] {
        var environment: [String: String] = [:]
        for variable in container["env"] as? [[String: Any]] ?? [] {
            let name = try #require(variable["name"] as? String)
            if let value = variable["value"] as? String {
                environment[name] = value
            } else if let reference = (variable["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any] {
                #expect(name == "TOKENCTL_MASTER_KEY" && reference["key"] as? String == "TOKENCTL_MASTER_KEY" && reference["name"] is String)
                environment[name] = masterKey
            }
        }
        #expect(environment["TOKENCTL_MASTER_KEY"] == masterKey, "the master key does not come from a Secret")
        return environment
    }

    /// Checks that the workload mounts the manifests ConfigMap read-only at the `-f` path and the PVC at `--state-dir`.
    static func expectVolumes(_ workload: [String: Any], arguments: [String], claim: String) throws {
        let spec = podSpec(workload)
        let container = try container(workload)
        let volumes = try #require(spec["volumes"] as? [[String: Any]])
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        func mountPath(ofVolumeWhere predicate: ([String: Any]) -> Bool) -> [String: Any]? {
            guard let volume = volumes.first(where: predicate), let name = volume["name"] as? String else { return nil }
            return mounts.first { $0["name"] as? String == name }
        }
        let manifests = try #require(mountPath { $0["configMap"] != nil }, "no ConfigMap volume mounted")
        let state = try #require(mountPath { ($0["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String == claim },
                                 "the PVC \(claim) is not mounted")
        #expect(manifests["readOnly"] as? Bool == true)
        let manifestsIndex = try #require(arguments.firstIndex(of: "-f"), "no -f in \(arguments)")
        let stateIndex = try #require(arguments.firstIndex(of: "--state-dir"), "no --state-dir in \(arguments)")
        try #require(manifestsIndex + 1 < arguments.count && stateIndex + 1 < arguments.count)
        #expect(arguments[manifestsIndex + 1] == manifests["mountPath"] as? String)
        #expect(arguments[stateIndex + 1] == state["mountPath"] as? String)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true)
        #expect(security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((spec["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
        #expect(spec["terminationGracePeriodSeconds"] as? Int == 60)
    }

    /// Lays the example manifests out as a ConfigMap volume does (`..data` → a hidden timestamped directory, files
    /// as symlinks into it), with the store's absolute `/state/` paths mapped into the scratch state directory.
    ///
    /// The mapped path goes through a symlink named with lowercase letters only: tokenctl's literal-secret check
    /// rejects a long path that mixes letters and digits (such as the scratch directory's UUID) as "a long random
    /// string". Returns the symlink, for the caller to remove.
    static func mountExampleManifestsLikeAConfigMap(into scratch: Scratch) throws -> String {
        let text = try String(contentsOfFile: kubernetes + "/manifests/tokens.yaml", encoding: .utf8)
        #expect(text.contains("path: /state/"), "the example store should deliver to the state volume")
        try FileManager.default.createDirectory(atPath: scratch.state, withIntermediateDirectories: true)
        let alias = "/tmp/tokenctl-recipe-" + String((0..<10).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! })
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: scratch.state)
        let hidden = scratch.manifests + "/..2026_11_30_12_00_00.000000001"
        BinaryRunner.write(text.replacingOccurrences(of: "path: /state/", with: "path: \(alias)/"), to: hidden + "/tokens.yaml")
        try FileManager.default.createSymbolicLink(atPath: scratch.manifests + "/..data", withDestinationPath: (hidden as NSString).lastPathComponent)
        try FileManager.default.createSymbolicLink(atPath: scratch.manifests + "/tokens.yaml", withDestinationPath: "..data/tokens.yaml")
        return alias
    }

    @Test func deploymentArgsRunAndItsProbesAndMetricsMatchWhatTheControllerServes() async throws {
        let deployment = try Self.document(Self.kubernetes + "/deployment.yaml")
        let claim = try #require(((try Self.document(Self.kubernetes + "/pvc.yaml"))["metadata"] as? [String: Any])?["name"] as? String)
        let spec = try #require(deployment["spec"] as? [String: Any])
        #expect(deployment["kind"] as? String == "Deployment")
        #expect(spec["replicas"] as? Int == 1, "the SQLite state is single-writer")
        #expect((spec["strategy"] as? [String: Any])?["type"] as? String == "Recreate")
        let container = try Self.container(deployment)
        let arguments = try #require(container["args"] as? [String])
        #expect(Array(arguments.prefix(2)) == ["reconcile", "--watch"])
        try Self.expectVolumes(deployment, arguments: arguments, claim: claim)

        // (d) The port: --listen, containerPort, both probes and the scrape annotation agree.
        let listen = try #require(arguments.firstIndex(of: "--listen").map { arguments[$0 + 1] })
        let port = try #require(listen.split(separator: ":").last.flatMap { Int($0) })
        #expect(listen.hasPrefix("0.0.0.0:") || listen.hasPrefix(":"), "the kubelet cannot reach \(listen)")
        let ports = try #require(container["ports"] as? [[String: Any]])
        #expect(ports.contains { $0["containerPort"] as? Int == port })
        func probe(_ name: String) throws -> String {
            let get = try #require((container[name] as? [String: Any])?["httpGet"] as? [String: Any], "\(name) is not an httpGet probe")
            let probePort = get["port"] as? Int ?? ports.first { $0["name"] as? String == get["port"] as? String }?["containerPort"] as? Int
            #expect(probePort == port, "\(name) probes port \(String(describing: get["port"])), the controller listens on \(port)")
            return try #require(get["path"] as? String)
        }
        let health = try probe("livenessProbe"), ready = try probe("readinessProbe")
        #expect(health == "/healthz" && ready == "/readyz")
        let annotations = try #require(((spec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["annotations"] as? [String: String])
        #expect(annotations["prometheus.io/scrape"] == "true")
        #expect(annotations["prometheus.io/port"] == String(port))
        let metricsPath = try #require(annotations["prometheus.io/path"])

        // Run the container's args against the example manifests laid out as a ConfigMap volume, and ask the probe
        // and annotation paths taken from the YAML.
        let scratch = Scratch()
        defer { scratch.remove() }
        let alias = try Self.mountExampleManifestsLikeAConfigMap(into: scratch)
        defer { unlink(alias) }
        let key = Self.masterKey()
        let stderr = try await Self.runController(try Self.mapped(arguments, into: scratch, expectedManifests: "/manifests", expectedState: "/state"),
                                                  environment: try Self.environment(container, masterKey: key), scratch: scratch,
                                                  paths: (health, ready, metricsPath))
        Self.expectJSONLogs(stderr)
        #expect(FileManager.default.fileExists(atPath: scratch.state + "/secrets.vault"), "the example store did not deliver to the state volume")
        let status = try BinaryRunner.run(["status", "-f", scratch.manifests, "--state-dir", scratch.state])
        #expect(status.stdout.contains("payments/orders-api-ci"), "\(status.stdout + status.stderr)")
        #expect(status.stdout.contains(": 1 ok."), "\(status.stdout)")
    }

    @Test func cronJobArgsRunOnePassWithTheSameVolumes() throws {
        let cronJob = try Self.document(Self.kubernetes + "/cronjob.yaml")
        let deployment = try Self.document(Self.kubernetes + "/deployment.yaml")
        let claim = try #require(((try Self.document(Self.kubernetes + "/pvc.yaml"))["metadata"] as? [String: Any])?["name"] as? String)
        let spec = try #require(cronJob["spec"] as? [String: Any])
        #expect(cronJob["kind"] as? String == "CronJob")
        #expect(spec["concurrencyPolicy"] as? String == "Forbid")
        #expect(spec["schedule"] is String)
        let container = try Self.container(cronJob)
        let arguments = try #require(container["args"] as? [String])
        #expect(arguments.first == "reconcile" && !arguments.contains("--watch") && arguments.contains("--lock-timeout"))
        try Self.expectVolumes(cronJob, arguments: arguments, claim: claim)
        #expect(container["image"] as? String == (try Self.container(deployment))["image"] as? String)

        let scratch = Scratch()
        defer { scratch.remove() }
        let alias = try Self.mountExampleManifestsLikeAConfigMap(into: scratch)
        defer { unlink(alias) }
        let key = Self.masterKey()
        let run = try Self.mapped(arguments, into: scratch, expectedManifests: "/manifests", expectedState: "/state")
        let first = try BinaryRunner.run(run, environment: try Self.environment(container, masterKey: key))
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("+ issue     payments/orders-api-ci v1"))
        #expect(FileManager.default.fileExists(atPath: scratch.state + "/secrets.vault"))
        let second = try BinaryRunner.run(run, environment: try Self.environment(container, masterKey: key))
        #expect(second.status == 0)
        #expect(second.stdout.contains("No changes."), "\(second.stdout)")
    }

    // MARK: GitHub Actions

    struct Workflow {
        let object: [String: Any]

        init() throws {
            object = try RecipeTests.document(RecipeTests.githubActions + "/tokenctl.yml")
        }

        var jobs: [String: [String: Any]] { (object["jobs"] as? [String: Any])?.compactMapValues { $0 as? [String: Any] } ?? [:] }

        func steps(_ job: String) -> [[String: Any]] { jobs[job]?["steps"] as? [[String: Any]] ?? [] }

        func step(_ job: String, _ id: String) throws -> [String: Any] {
            try #require(steps(job).first { $0["id"] as? String == id }, "job \(job) has no step \(id)")
        }
    }

    /// Runs a step's `run:` script the way the workflow's `shell: bash` does (`bash --noprofile --norc -eo pipefail`),
    /// in the checkout, with tokenctl on PATH and the GitHub files a step writes to.
    static func runStep(_ step: [String: Any], in root: String, environment: [String: String]) throws -> BinaryRunner.Outcome {
        let script = try #require(step["run"] as? String)
        let path = root + "/.step-\(UUID().uuidString).sh"
        BinaryRunner.write(script, to: path)
        defer { unlink(path) }
        let binaries = (BinaryRunner.executable as NSString).deletingLastPathComponent
        var env = environment
        env["PATH"] = binaries + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for (name, file) in [("GITHUB_OUTPUT", "github-output"), ("GITHUB_STEP_SUMMARY", "step-summary"), ("GITHUB_PATH", "github-path")] {
            env[name] = root + "/.github-files/" + file
        }
        try FileManager.default.createDirectory(atPath: root + "/.github-files", withIntermediateDirectories: true)
        for (name, value) in ["GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REPOSITORY": "example/tokens",
                              "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42", "GITHUB_ACTOR": "octocat"] {
            env[name] = value
        }
        return try BinaryRunner.runProgram("/bin/bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", "cd \"$1\" && . \"$2\"", "bash", root, path],
                                           environment: env)
    }

    /// The last `exitcode=` a step wrote to $GITHUB_OUTPUT.
    static func output(_ root: String, _ name: String) -> String? {
        let text = (try? String(contentsOfFile: root + "/.github-files/github-output", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").last { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test func workflowTriggersConcurrencyAndScripts() throws {
        let workflow = try Workflow()
        let on = try #require(workflow.object["on"] as? [String: Any])
        #expect(on["pull_request"] != nil)
        #expect(((on["push"] as? [String: Any])?["branches"] as? [String]) == ["main"])
        let apply = try #require(workflow.jobs["apply"])
        let concurrency = try #require(apply["concurrency"] as? [String: Any], "two applies could overlap")
        #expect(concurrency["group"] is String && concurrency["cancel-in-progress"] as? Bool == false)
        #expect((apply["if"] as? String)?.contains("refs/heads/main") == true)
        #expect((workflow.jobs["plan"]?["if"] as? String)?.contains("pull_request") == true)
        #expect((workflow.jobs["plan"]?["permissions"] as? [String: Any])?["pull-requests"] as? String == "write")
        let applyStep = try workflow.step("apply", "apply")
        #expect((applyStep["env"] as? [String: Any])?["TOKENCTL_MASTER_KEY"] as? String == "${{ secrets.TOKENCTL_MASTER_KEY }}")
        #expect(workflow.jobs.values.allSatisfy { job in
            (job["steps"] as? [[String: Any]] ?? []).allSatisfy { ($0["env"] as? [String: Any])?["TOKENCTL_MASTER_KEY"] == nil || $0["id"] as? String == "apply" }
        }, "only the apply step may see the master key")
        #expect(workflow.steps("plan").contains { ($0["uses"] as? String)?.hasPrefix("actions/github-script@") == true })

        // No run: script interpolates an expression (script injection); values come in through env:.
        // Every step that runs tokenctl is one the next test runs for real.
        let exercised: Set<String> = ["validate", "plan", "apply"]
        for (name, job) in workflow.jobs {
            for step in job["steps"] as? [[String: Any]] ?? [] {
                guard let script = step["run"] as? String else { continue }
                #expect(!script.contains("${{"), "job \(name), step \(step["name"] ?? "?"): run: interpolates an expression")
                let invokesTokenctl = script.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("tokenctl ") }
                if invokesTokenctl {
                    #expect(exercised.contains(step["id"] as? String ?? ""), "job \(name): step \(step["name"] ?? "?") runs tokenctl but is not tested")
                    #expect(script.contains("--state-dir \"$TOKENCTL_STATE_DIR\"") || !script.contains(" plan ") && !script.contains(" apply "),
                            "job \(name): tokenctl must use the persistent state directory")
                }
            }
        }
        let env = try #require(workflow.object["env"] as? [String: Any])
        #expect(env["TOKENCTL_STATE_DIR"] is String, "the workflow must name a persistent state directory")
    }

    @Test func workflowPlanStepCommentsAndApplyRunForReal() throws {
        let workflow = try Workflow()
        let validate = try workflow.step("plan", "validate"), plan = try workflow.step("plan", "plan")
        let comment = try workflow.step("plan", "comment"), verdict = try workflow.step("plan", "verdict")
        let apply = try workflow.step("apply", "apply")
        #expect((plan["run"] as? String)?.contains("tokenctl plan -f manifests") == true)
        #expect((plan["run"] as? String)?.contains("--detailed-exitcode --format markdown > plan.md") == true)
        #expect((apply["run"] as? String)?.contains("tokenctl apply -f manifests") == true)
        #expect((apply["run"] as? String)?.contains("--auto-approve --lock-timeout 5m") == true)

        let scratch = Scratch()
        defer { scratch.remove() }
        let key = Self.masterKey()
        let base = ["TOKENCTL_STATE_DIR": scratch.state, "NO_COLOR": "1"]
        func planRound() throws -> (exitcode: String?, plan: String, comment: String, verdict: Int32) {
            let step = try Self.runStep(plan, in: scratch.root, environment: base)
            #expect(step.status == 0, "the plan step itself must not fail: \(step.stderr)")
            let code = Self.output(scratch.root, "exitcode")
            let composed = try Self.runStep(comment, in: scratch.root, environment: base.merging(["PLAN_EXITCODE": code ?? ""]) { $1 })
            #expect(composed.status == 0, "\(composed.stderr)")
            let judged = try Self.runStep(verdict, in: scratch.root, environment: base.merging(["PLAN_EXITCODE": code ?? ""]) { $1 })
            let planText = (try? String(contentsOfFile: scratch.root + "/plan.md", encoding: .utf8)) ?? ""
            let commentText = (try? String(contentsOfFile: scratch.root + "/comment.md", encoding: .utf8)) ?? ""
            #expect(commentText.hasPrefix("<!-- tokenctl-plan -->\n"))
            return (code, planText, commentText, judged.status)
        }

        // A pull request adds a token: exit 2, a change table, the job passes.
        scratch.writeManifests(tokens: ["web"])
        #expect(try Self.runStep(validate, in: scratch.root, environment: base).status == 0)
        let first = try planRound()
        #expect(first.exitcode == "2")
        #expect(first.plan.contains("| | Action | Token | Issuer | Reason |"), "\(first.plan)")
        #expect(first.plan.contains("| + | issue | `apps/web v1` | local | `NotIssued`"), "\(first.plan)")
        #expect(first.comment.contains(first.plan))
        #expect(first.verdict == 0, "exit 2 (changes) must not fail the job")

        // Merged: the apply step issues it; the same plan then exits 0.
        let applied = try Self.runStep(apply, in: scratch.root, environment: base.merging(["TOKENCTL_MASTER_KEY": key]) { $1 })
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stdout.contains("Apply complete: 1 change"), "\(applied.stdout)")
        #expect(applied.stdout.contains("apps/web"), "the status after apply lists the token")
        let secret = try BinaryRunner.run(["secret", "get", "-f", scratch.manifests, "--state-dir", scratch.state, "apps/web"],
                                          environment: ["TOKENCTL_MASTER_KEY": key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("tkc_"))
        let unchanged = try planRound()
        #expect(unchanged.exitcode == "0")
        #expect(unchanged.plan.contains("**No changes.**"), "\(unchanged.plan)")
        #expect(unchanged.verdict == 0)

        // Another change while a secret exists: exit 2, and no secret in anything that would be posted.
        scratch.writeManifests(tokens: ["web", "api"])
        let second = try planRound()
        #expect(second.exitcode == "2")
        #expect(second.plan.contains("`apps/api v1`"))
        for text in [second.plan, second.comment, applied.stdout, applied.stderr] {
            #expect(!text.contains(secret), "a secret would be posted")
        }

        // A literal secret in a manifest: exit 1, the comment shows the diagnostic but not the line that holds the value, the job fails.
        let leaked = "ghp_" + String((0..<36).map { _ in "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".randomElement()! })
        BinaryRunner.write(ManifestText.header(dotenv: false) + Self.token("web", extra: ", annotations: {note: \(leaked)}"), to: scratch.manifests + "/tokens.yaml")
        #expect(try Self.runStep(validate, in: scratch.root, environment: base).status == 1)
        let broken = try planRound()
        #expect(broken.exitcode == "1")
        #expect(broken.comment.contains("error (exit 1)") && broken.comment.contains("source line not shown"), "\(broken.comment)")
        #expect(!broken.comment.contains(leaked), "a literal secret would be posted")
        #expect(broken.verdict != 0, "exit 1 must fail the job")

        // A policy violation: exit 3, the comment says so, the job fails.
        BinaryRunner.write(ManifestText.header(dotenv: false) + Self.token("web") + """
            ---
            apiVersion: tokenctl/v1
            kind: Policy
            metadata: {name: strict}
            spec:
              scopes:
                - owners: [team-apps]
                  allow: ["metrics:read"]

            """, to: scratch.manifests + "/tokens.yaml")
        let violating = try planRound()
        #expect(violating.exitcode == "3")
        #expect(violating.comment.contains("policy violation (exit 3)") && violating.comment.contains("scope 'read' is not allowed"), "\(violating.comment)")
        #expect(violating.verdict != 0, "exit 3 must fail the job")

        // The state lives where TOKENCTL_STATE_DIR says, not in the checkout.
        #expect(FileManager.default.fileExists(atPath: scratch.state + "/state.db"))
        #expect(!FileManager.default.fileExists(atPath: scratch.manifests + "/.tokenctl"))
    }
}
