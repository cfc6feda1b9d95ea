// plan-bench: records state for synthetic manifests (as if every token had been applied a day ago), then
// times loading that state and a no-op `tokenctl plan` against a bare libyaml event loop over the same files.
//
//   plan-bench DIR --tokenctl .build/release/tokenctl [--repeat 3]
//
// DIR comes from `manifest-bench generate`; the state is written to DIR/.tokenctl (once).
import BenchmarkSupport
import Foundation
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner
import TokenctlSQLite
import TokenctlStandardDrivers
import TokenctlState

func fail(_ message: String) -> Never { Bench.fail("plan-bench", message) }

/// Records every token of the manifests as issued `age` ago and delivered where the manifests say.
func recordState(_ manifests: ManifestSet, directory: String, at moment: Timestamp) async throws {
    let store = try SQLiteStateStore(directory: directory, mode: .readWrite)
    let issued = Timestamp(secondsSinceEpoch: moment.secondsSinceEpoch - 86_400)
    let tokens = manifests.tokens.map { token in
        RecordedToken(
            id: token.id, issuer: token.issuer, owner: token.owner, lifespan: token.lifespan, rotationEvery: token.effectiveRotationEvery,
            overlap: token.rotation.overlap, window: token.rotation.window?.text,
            versions: [CredentialVersion(
                version: 1, credentialID: "tk-\(token.id.namespace)-\(token.id.name)", fingerprint: "sha256:bench", scopes: token.scopes,
                issuedAt: issued, expiresAt: token.lifespan.duration.map { issued + $0 }, status: .active,
                deliveries: token.deliverTo.map { DeliveryRecord(store: $0.store, key: $0.key, contentFingerprint: "fp", deliveredAt: issued) })])
    }
    var serial: Int64 = 0
    for chunk in stride(from: 0, to: tokens.count, by: 10_000) {
        serial = try await store.write(tokens[chunk..<min(tokens.count, chunk + 10_000)].map { .upsert($0) }, expectedSerial: serial)
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: plan-bench DIR [--tokenctl PATH] [--repeat R]") }
let directory = arguments[1]
let tokenctl = Bench.option("--tokenctl") ?? ".build/release/tokenctl"
let repeats = Bench.option("--repeat").flatMap(Int.init) ?? 3
let moment = Timestamp(secondsSinceEpoch: 1_796_040_000)  // 2026-11-30T12:00:00Z
let stateDirectory = directory + "/.tokenctl"

let loaded = ManifestLoader(registry: .standard).load(paths: [directory], now: moment)
if loaded.hasErrors { fail("the manifests in \(directory) have errors") }
if !FileManager.default.fileExists(atPath: stateDirectory + "/state.db") {
    let start = Bench.now()
    try await recordState(loaded.manifests, directory: stateDirectory, at: moment)
    print(String(format: "recorded %d tokens in %.2f s", loaded.manifests.tokens.count, Bench.now() - start))
}
let files = loaded.files
var bare = Double.infinity, plan = Double.infinity, load = Double.infinity, planner = Double.infinity
var rss = 0
var changes = -1
for _ in 0..<repeats {
    bare = min(bare, Bench.bareEventLoop(files).seconds)
    let store = try SQLiteStateStore(directory: stateDirectory, mode: .readOnly)
    var start = Bench.now()
    let state = try await store.load()
    load = min(load, Bench.now() - start)
    start = Bench.now()
    let result = Planner.plan(desired: loaded.manifests, recorded: state, observed: nil, now: moment)
    planner = min(planner, Bench.now() - start)
    changes = result.changes.count
    let child = Bench.measureChild([tokenctl, "plan", "-f", directory, "--at", moment.description, "--detailed-exitcode"])
    guard child.status == 0 else { fail("tokenctl plan exited \(child.status) (2 means it found changes: the state does not match)") }
    plan = min(plan, child.seconds)
    rss = max(rss, child.maxRSSKiB)
}
print(String(format: "%@: %d tokens, %d file(s); no-op plan found %d changes", directory, loaded.manifests.tokens.count, files.count, changes))
print(String(format: "  bare libyaml event loop (1 thread): %7.3f s", bare))
print(String(format: "  tokenctl plan (process, no-op):     %7.3f s  ratio %.2fx  peak RSS %d MiB", plan, plan / bare, rss / 1024))
print(String(format: "  state load (SQLite):                %7.3f s", load))
print(String(format: "  planner alone:                      %7.3f s", planner))
