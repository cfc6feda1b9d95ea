import TokenctlModel

/// Deletion protection: a plan that retires more than a share of the managed tokens is held for an operator.
///
/// A partial `-f` list, a half-written manifest or a bad merge looks to the planner exactly like an operator retiring
/// tokens on purpose. Retiring is the one change that cannot be undone, so past a limit it needs an explicit yes.
///
/// ```swift
/// if let tripped = RetirementGuard(limitPercent: 10).check(plan, recorded: state) { print(tripped.message) }
/// ```
package struct RetirementGuard: Sendable, Hashable {
    /// The largest share of the managed tokens a plan may retire, in percent; one token may always go.
    package var limitPercent: Int

    /// The default limit: 10% of the managed tokens.
    package static let defaultLimitPercent = 10

    /// Creates a guard.
    package init(limitPercent: Int = RetirementGuard.defaultLimitPercent) {
        self.limitPercent = limitPercent
    }

    /// What tripped the guard.
    package struct Tripped: Sendable, Hashable {
        /// Tokens the plan retires because they left the manifests, plus ghosts it revokes (a state restored from an old
        /// backup makes every newer credential look like a ghost).
        package var retiring: Int
        /// Tokens the state manages (with a credential not yet revoked).
        package var managed: Int
        /// How many the limit allows.
        package var allowed: Int
        /// The limit in percent.
        package var limitPercent: Int
        /// A few of the tokens, for the message.
        package var examples: [TokenID]
        /// How many of `retiring` are ghosts.
        package var ghosts: Int = 0

        /// A full sentence for logs and errors.
        package var message: String {
            let share = managed == 0 ? 100 : retiring * 100 / managed
            var sample = examples.map(\.description).joined(separator: ", ") + (retiring - ghosts > examples.count ? ", …" : "")
            if ghosts > 0 { sample += (sample.isEmpty ? "" : ", ") + "\(counted(ghosts, "ghost"))" }
            return "this plan retires \(retiring) of the \(managed) managed tokens (\(share)%: \(sample)), more than the "
                + "\(limitPercent)% (\(allowed)) allowed at once; if the manifests are complete and this is intended, apply with "
                + "--allow-mass-retirement (or raise --retire-limit); if not, check that every manifest path is given with -f "
                + "and that no manifest file is half-written"
        }
    }

    /// How many tokens may be retired at once out of `managed`.
    package func allowed(managed: Int) -> Int {
        max(1, managed * limitPercent / 100)
    }

    /// Nil when the plan stays within the limit.
    package func check(_ plan: Plan, recorded: RecordedState) -> Tripped? {
        var retiring = Set<TokenID>()
        for change in plan.changes where change.action == .retire && change.reason == .removedFromManifests {
            if let token = change.token { retiring.insert(token) }
        }
        let ghosts = plan.changes.filter { $0.action == .ghost && $0.retireGhost }.count
        guard !retiring.isEmpty || ghosts > 0 else { return nil }
        let managed = recorded.tokens.values.filter { $0.versions.contains { $0.status != .revoked } }.count
        let allowed = allowed(managed: managed)
        guard retiring.count + ghosts > allowed else { return nil }
        return Tripped(retiring: retiring.count + ghosts, managed: managed, allowed: allowed, limitPercent: limitPercent,
                       examples: Array(retiring.sorted().prefix(3)), ghosts: ghosts)
    }
}
