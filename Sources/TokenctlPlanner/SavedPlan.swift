import TokenctlModel

/// A plan saved with `plan --out`: the plan plus what it was made from, so that a later apply can
/// refuse it when the state or the manifests have changed since.
package struct SavedPlan: Hashable, Sendable, Codable {
    /// Marks the file as a tokenctl plan.
    package var kind = "tokenctl-plan"
    /// The plan; `stateSerial` and `manifestsDigest` say what it was made against.
    package var plan: Plan
    /// The manifest paths given with `-f`, made absolute.
    package var manifestPaths: [String]
    /// The state directory it was planned against, made absolute.
    package var stateDirectory: String
    /// An authentication code over the rest of the file, keyed from the master key; nil when none existed.
    package var seal: String?

    /// Creates a saved plan.
    package init(plan: Plan, manifestPaths: [String], stateDirectory: String) {
        self.plan = plan
        self.manifestPaths = manifestPaths
        self.stateDirectory = stateDirectory
    }

    /// Why a saved plan cannot be applied.
    package enum Staleness: Equatable, Sendable {
        /// The state was written since the plan was made.
        case stateChanged(planned: Int64, current: Int64)
        /// The manifests differ from those the plan was made from.
        case manifestsChanged
        /// The plan was made for a later moment (`plan --at`): what it lists is not due yet.
        case madeForLater(plannedFor: Timestamp)
    }

    /// How far ahead of the applying machine's clock a plan may have been made, for clocks that differ a little.
    package static let clockTolerance: Int64 = 300

    /// Whether the plan still fits the current state serial, manifests digest and time.
    package func staleness(currentSerial: Int64, currentDigest: String, now: Timestamp) -> Staleness? {
        if plan.stateSerial != currentSerial { return .stateChanged(planned: plan.stateSerial, current: currentSerial) }
        if plan.manifestsDigest != currentDigest { return .manifestsChanged }
        if plan.createdAt.secondsSinceEpoch > now.secondsSinceEpoch + Self.clockTolerance {
            return .madeForLater(plannedFor: plan.createdAt)
        }
        return nil
    }

    /// Why the plan cannot be applied, as a sentence that says what to do.
    package func message(_ staleness: Staleness) -> String {
        switch staleness {
        case let .stateChanged(planned, current):
            return "the saved plan is stale: it was made at state serial \(planned), the state is now at \(current); "
                + "make a new plan with tokenctl plan --out"
        case .manifestsChanged:
            return "the saved plan was made from other manifests than those now at \(manifestPaths.joined(separator: ", ")); "
                + "make a new plan with tokenctl plan --out"
        case let .madeForLater(plannedFor):
            return "the saved plan was made for \(plannedFor) (plan --at), which has not come yet, so what it lists is not due; "
                + "make a plan for now with tokenctl plan --out, or apply this one after that time"
        }
    }

    /// How a saved plan differs from `expected`, the plan the same state and manifests give at the moment it was made
    /// for; nil when they agree. Apply refuses a plan that differs, so it executes exactly what planning produced.
    package static func mismatch(_ saved: Plan, expected: Plan) -> String? {
        guard saved != expected else { return nil }
        func describe(_ change: PlannedChange) -> String {
            let subject = change.token?.description ?? change.ghost.map { "ghost \($0.credentialID)" } ?? change.issuer
            return "\(change.action.rawValue) \(subject)" + (change.version.map { " v\($0)" } ?? "")
        }
        for (listed, planned) in zip(saved.changes, expected.changes) where listed != planned {
            return describe(listed) == describe(planned)
                ? "its change '\(describe(listed))' differs in its details (reason, facts or stores)"
                : "it lists '\(describe(listed))' where planning gives '\(describe(planned))'"
        }
        if saved.changes.count != expected.changes.count {
            return "it lists \(counted(saved.changes.count, "change")) where planning gives \(expected.changes.count)"
        }
        if saved.held != expected.held { return "its tokens held by policy differ" }
        return "its header (time, state serial, digest or next due time) differs"
    }
}
