import TokenctlModel

/// A plan saved with `plan --out`: the plan plus what it was made from, so that a later apply can
/// refuse it when the state or the manifests have changed since.
public struct SavedPlan: Hashable, Sendable, Codable {
    /// Marks the file as a tokenctl plan.
    public var kind = "tokenctl-plan"
    /// The plan; `stateSerial` and `manifestsDigest` say what it was made against.
    public var plan: Plan
    /// The manifest paths given with `-f`.
    public var manifestPaths: [String]
    /// The state directory it was planned against.
    public var stateDirectory: String

    /// Creates a saved plan.
    public init(plan: Plan, manifestPaths: [String], stateDirectory: String) {
        self.plan = plan
        self.manifestPaths = manifestPaths
        self.stateDirectory = stateDirectory
    }

    /// Why a saved plan cannot be applied.
    public enum Staleness: Equatable, Sendable {
        /// The state was written since the plan was made.
        case stateChanged(planned: Int64, current: Int64)
        /// The manifests differ from those the plan was made from.
        case manifestsChanged
    }

    /// Whether the plan still fits the current state serial and manifests digest.
    public func staleness(currentSerial: Int64, currentDigest: String) -> Staleness? {
        if plan.stateSerial != currentSerial { return .stateChanged(planned: plan.stateSerial, current: currentSerial) }
        if plan.manifestsDigest != currentDigest { return .manifestsChanged }
        return nil
    }
}
