import Foundation
import Synchronization
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner

/// What apply prints while it works: a line per change as it completes, or, for large plans, a line per step with
/// the running count (a line per token of 100,000 would bury the failures).
final class ApplyProgress: Sendable {
    /// Up to this many changes, each gets its own line.
    static let linePerChangeLimit = 50

    let total: Int
    let linePerChange: Bool
    private let done = Mutex(0)

    init(total: Int) {
        self.total = total
        linePerChange = total <= Self.linePerChangeLimit
    }

    func record(_ outcomes: [ChangeOutcome]) {
        let count = done.withLock { value in
            value += outcomes.count
            return value
        }
        if linePerChange {
            for outcome in outcomes { print(Self.line(outcome, failure: outcome.failure)) }
        } else {
            let failed = outcomes.filter { $0.failure != nil }.count
            print("  … \(min(count, total)) of \(total) done\(failed > 0 ? " (\(failed) failed in this step)" : "")")
        }
        fflush(nil)
    }

    /// `  done    issue     apps/web v1`, or `  failed  …: why`.
    static func line(_ outcome: ChangeOutcome, failure: ChangeFailure?) -> String {
        let subject = PlanRenderer.subject(of: outcome.change)
        let action = outcome.change.action.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
        guard let failure else { return "  done    \(action) \(subject)" }
        return "  failed  \(action) \(subject): \(failure)"
    }
}
