// apply-bench: applies a generated manifest set from empty state (every token issued by the builtin issuer and
// delivered to an encrypted store, crash-safe), then times a second apply (no changes) against plans.
//
//   apply-bench DIR --tokenctl .build/release/tokenctl
//
// DIR comes from `manifest-bench generate`; its .tokenctl/ and secrets.vault are removed first.
import BenchmarkSupport
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { Bench.fail("apply-bench", "usage: apply-bench DIR [--tokenctl PATH]") }
let directory = arguments[1]
let tokenctl = Bench.option("--tokenctl") ?? ".build/release/tokenctl"
try? FileManager.default.removeItem(atPath: directory + "/.tokenctl")
try? FileManager.default.removeItem(atPath: directory + "/secrets.vault")

let files = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".yaml") } ?? []
let tokens = files.reduce(0) { count, file in
    count + ((try? String(contentsOfFile: directory + "/" + file, encoding: .utf8))?.components(separatedBy: "kind: Token").count ?? 1) - 1
}
let first = Bench.measureChild([tokenctl, "apply", "-f", directory, "--auto-approve"])
guard first.status == 0 else { Bench.fail("apply-bench", "the first apply exited \(first.status)") }
var second = Double.infinity, plan = Double.infinity, secondRefreshed = Double.infinity, refreshed = Double.infinity
for _ in 0..<5 {
    let again = Bench.measureChild([tokenctl, "apply", "-f", directory, "--auto-approve"])
    guard again.status == 0 else { Bench.fail("apply-bench", "the second apply exited \(again.status)") }
    second = min(second, again.seconds)
    plan = min(plan, Bench.measureChild([tokenctl, "plan", "-f", directory]).seconds)
    secondRefreshed = min(secondRefreshed, Bench.measureChild([tokenctl, "apply", "-f", directory, "--auto-approve", "--refresh"]).seconds)
    refreshed = min(refreshed, Bench.measureChild([tokenctl, "plan", "-f", directory, "--refresh"]).seconds)
}
print(String(format: "%@: %d tokens", directory, tokens))
print(String(format: "  first apply (issue + deliver, crash-safe): %6.2f s  %6.0f tokens/s  peak RSS %d MiB", first.seconds,
             Double(tokens) / first.seconds, first.maxRSSKiB / 1024))
print(String(format: "  second apply (no changes):                %6.2f s", second))
print(String(format: "  plan (no changes):                        %6.2f s", plan))
print(String(format: "  apply --refresh (no changes):             %6.2f s", secondRefreshed))
print(String(format: "  plan --refresh (no changes):              %6.2f s", refreshed))
