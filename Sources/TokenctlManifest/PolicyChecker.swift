import Dispatch
import TokenctlModel

/// Checks tokens against every Policy: a pure function of the manifests and the moment judged.
///
/// ```swift
/// let violations = PolicyChecker.check(manifests, now: try Timestamp(parsing: "2026-11-29"))
/// ```
package enum PolicyChecker {
    /// How long before an exception expires a warning says so.
    package static let exceptionWarningPeriod = TokenDuration(seconds: 30 * 86_400)

    /// The first moment after `now` at which `check` finds a different violation (a permanent token's exception
    /// expiring), or nil: until then a controller may keep the holds it judged at `now`.
    package static func nextChange(_ manifests: ManifestSet, after now: Timestamp) -> Timestamp? {
        var next: Timestamp?
        manifests.tokens.withUnsafeBufferPointer { buffer in
            for token in buffer.indices {
                guard case .never = buffer[token].lifespan, let expires = buffer[token].exception?.expires, expires > now else { continue }
                next = min(next ?? expires, expires)
            }
        }
        return next
    }

    /// The policy violations (and exception warnings) of `manifests` as of `now`.
    package static func check(_ manifests: ManifestSet, now: Timestamp) -> [Diagnostic] {
        let tokens = manifests.tokens
        // Each token is judged on its own, so chunks run in parallel; results keep token order.
        let chunkCount = tokens.count < 4096 ? 1 : 16
        let chunkSize = (tokens.count + chunkCount - 1) / chunkCount
        let chunks = ConcurrentSlots<[Diagnostic]>(count: chunkCount, initial: [])
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            var diagnostics: [Diagnostic] = []
            let range = (chunk * chunkSize)..<min(tokens.count, (chunk + 1) * chunkSize)
            let policies = chunkCount == 1 ? manifests.policies : privateCopy(of: manifests.policies)
            // Read through a buffer pointer rather than `for token in`, which copies each token (every copy
            // retains and releases all of its fields).
            tokens.withUnsafeBufferPointer { buffer in
                for index in range {
                    checkPermanence(buffer[index], policies: policies, now: now, into: &diagnostics)
                    for policy in policies {
                        check(buffer[index], against: policy, into: &diagnostics)
                    }
                }
            }
            chunks.set(chunk, diagnostics)
        }
        return chunks.take().flatMap { $0 }
    }

    /// The tokens that `diagnostics` find in violation of a policy, with the violations' messages.
    package static func holds(_ diagnostics: [Diagnostic]) -> [TokenID: [String]] {
        var holds: [TokenID: [String]] = [:]
        for diagnostic in diagnostics where diagnostic.severity == .policy {
            if let token = diagnostic.token { holds[token, default: []].append(diagnostic.message) }
        }
        return holds
    }

    /// A copy of `policies` that shares no storage with them: every token retains the policy's strings and
    /// arrays, and workers retaining the same objects contend on their reference counts.
    private static func privateCopy(of policies: [Policy]) -> [Policy] {
        func fresh(_ text: String) -> String { String(decoding: Array(text.utf8), as: UTF8.self) }
        func fresh(_ patterns: [GlobPattern]) -> [GlobPattern] { patterns.map { GlobPattern(fresh($0.pattern)) } }
        return policies.map { policy in
            Policy(metadata: ResourceMetadata(name: fresh(policy.metadata.name), location: policy.metadata.location),
                   maxLifespan: policy.maxLifespan, maxRotationEvery: policy.maxRotationEvery, permanentTokens: policy.permanentTokens,
                   scopes: policy.scopes.map { rules in rules.map { Policy.ScopeRule(owners: fresh($0.owners), allow: fresh($0.allow)) } })
        }
    }

    private static func checkPermanence(_ token: Token, policies: [Policy], now: Timestamp, into diagnostics: inout [Diagnostic]) {
        guard case .never = token.lifespan else { return }
        // Without any Policy, permanent tokens still need an exception.
        let rules = policies.isEmpty ? [(name: "(built-in)", rule: PermanentTokenRule.requireException)]
            : policies.map { (name: "'\($0.metadata.name)'", rule: $0.permanentTokens) }
        for (name, rule) in rules {
            switch rule {
            case .allow:
                continue
            case .deny:
                diagnostics.append(Diagnostic(.policy, "permanent-token",
                    "token '\(token.id)' has lifespan never, but Policy \(name) denies permanent tokens; give it a finite lifespan such as 90d",
                    at: token.locations.lifespan, token: token.id))
            case .requireException:
                guard let exception = token.exception else {
                    diagnostics.append(Diagnostic(.policy, "permanent-token",
                        "token '\(token.id)' has lifespan never without an exception; Policy \(name) requires one: add spec.exception "
                        + "with reason, approvedBy, ticket and expires, or give it a finite lifespan",
                        at: token.locations.lifespan, token: token.id))
                    continue
                }
                if now >= exception.expires {
                    diagnostics.append(Diagnostic(.policy, "exception-expired",
                        "the exception for permanent token '\(token.id)' expired on \(exception.expiresText) (ticket \(exception.ticket)); "
                        + "renew the review and move 'expires' forward, or give the token a finite lifespan",
                        at: exception.location, token: token.id))
                } else if now + exceptionWarningPeriod >= exception.expires {
                    diagnostics.append(Diagnostic(.warning, "exception-expiring",
                        "the exception for permanent token '\(token.id)' expires on \(exception.expiresText) (ticket \(exception.ticket)); "
                        + "renew the review before then", at: exception.location, token: token.id))
                }
            }
        }
    }

    private static func check(_ token: Token, against policy: Policy, into diagnostics: inout [Diagnostic]) {
        let name = policy.metadata.name
        if let max = policy.maxLifespan, let lifespan = token.lifespan.duration, lifespan > max {
            diagnostics.append(Diagnostic(.policy, "max-lifespan",
                "token '\(token.id)' has lifespan \(lifespan), longer than the \(max) Policy '\(name)' allows; shorten it to at most \(max)",
                at: token.locations.lifespan, token: token.id))
        }
        if let max = policy.maxRotationEvery, let every = token.effectiveRotationEvery, every > max {
            let what = token.rotation.every == nil ? "rotates every \(every) (two thirds of its lifespan, the default)" : "rotates every \(every)"
            diagnostics.append(Diagnostic(.policy, "max-rotation",
                "token '\(token.id)' \(what), less often than the \(max) Policy '\(name)' allows; set rotation.every to at most \(max)",
                at: token.locations.rotationEvery ?? token.locations.lifespan, token: token.id))
        }
        guard let rules = policy.scopes else { return }
        func applies(_ rule: Policy.ScopeRule) -> Bool { rule.owners.contains { $0.matches(token.owner) } }
        for (index, scope) in token.scopes.enumerated() {
            // Checked rule by rule, so that a token within policy allocates nothing.
            guard !rules.contains(where: { rule in applies(rule) && rule.allow.contains { $0.matches(scope) } }) else { continue }
            let applicable = rules.filter(applies)
            let allowed = applicable.flatMap { $0.allow.map(\.pattern) }
            let detail = allowed.isEmpty ? "no scopes are allowed for owner '\(token.owner)'"
                : "owner '\(token.owner)' may hold \(allowed.joined(separator: ", "))"
            diagnostics.append(Diagnostic(.policy, "scope-not-allowed",
                "scope '\(scope)' is not allowed for token '\(token.id)' by Policy '\(name)': \(detail); remove the scope or extend the policy",
                at: token.locations.scopes[index], token: token.id))
        }
    }
}
