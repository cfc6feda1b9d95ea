import TokenctlModel

/// Renders a Plan for people: a line per change, its reason under it, a summary last.
///
/// ```swift
/// print(PlanRenderer.human(plan, colors: false))
/// ```
package enum PlanRenderer {
    /// The terminal view of SPEC §2.
    package static func human(_ plan: Plan, colors: Bool = false) -> String {
        guard !plan.changes.isEmpty || !plan.held.isEmpty else {
            return "No changes. Issued credentials match the manifests.\n"
        }
        let rows = plan.changes.map { change in (change, subject(change), extra(change)) }
        let subjectWidth = max(32, rows.map { $0.1.count }.max() ?? 0)
        let issuerWidth = max(12, rows.map { $0.0.issuer.count }.max() ?? 0)
        var text = header(plan) + "\n"
        for (change, subject, extra) in rows {
            let (symbol, colour) = Self.symbol(change)
            let action = change.action.rawValue.padding(to: 9)
            var line = "  \(paint(symbol, colour, colors)) \(paint(action, colour, colors)) \(subject.padding(to: subjectWidth)) "
            line += extra.isEmpty ? change.issuer : "\(change.issuer.padding(to: issuerWidth)) \(extra)"
            text += line.trailingSpacesRemoved + "\n"
            text += String(repeating: " ", count: 14) + "\(change.reason.rawValue): \(change.detail)\n"
        }
        for held in plan.held {
            let line = "  \(paint("!", "31", colors)) \(paint("held".padding(to: 9), "31", colors)) \(held.token.description.padding(to: subjectWidth)) "
                + heldNote(held)
            text += line.trailingSpacesRemoved + "\n"
            for violation in held.violations { text += String(repeating: " ", count: 14) + "PolicyViolation: \(violation)\n" }
        }
        text += "\n" + summary(plan) + "\n"
        return text
    }

    /// `Planned for 2026-11-30 12:00 UTC at state serial 3:`, the moment and state the plan was made for.
    package static func header(_ plan: Plan) -> String {
        "Planned for \(plan.createdAt.minuteText) at state serial \(plan.stateSerial)\(plan.refreshed ? ", issuers refreshed" : ""):"
    }

    /// `Plan: 1 to issue, 1 to rotate, … .`
    package static func summary(_ plan: Plan) -> String {
        let counts = plan.counts
        var parts: [String] = []
        for (key, label) in [("issue", "to issue"), ("rotate", "to rotate"), ("update", "to update"), ("redeliver", "to redeliver"),
                             ("undeliver", "to remove from stores"), ("retire", "to retire")] {
            if let count = counts[key] { parts.append("\(count) \(label)") }
        }
        if let count = counts["ghostRetired"] { parts.append("\(counted(count, "ghost")) to retire") }
        if let count = counts["ghostReported"] { parts.append("\(counted(count, "ghost")) reported") }
        if !plan.held.isEmpty { parts.append("\(plan.held.count) held by policy") }
        return parts.isEmpty ? "No changes." : "Plan: \(parts.joined(separator: ", "))."
    }

    /// What a held token goes without, e.g. `no rotate until it complies`.
    static func heldNote(_ held: HeldToken) -> String {
        if held.rateLimit != nil { return "no issue until the creation-rate window allows" }
        return held.withheld.isEmpty ? "no new credential until it complies"
            : "no \(held.withheld.map(\.rawValue).joined(separator: ", ")) until it complies"
    }

    /// The change's subject as the plan shows it, e.g. `payments/api v1 → v2`.
    package static func subject(of change: PlannedChange) -> String { subject(change) }

    static func subject(_ change: PlannedChange) -> String {
        // The issuer has its own column.
        if let ghost = change.ghost { return "\(ghost.hint) (id \(ghost.credentialID))" }
        let id = change.token?.description ?? "?"
        switch (change.version, change.newVersion) {
        case let (old?, new?) where change.action == .rotate: return "\(id) v\(old) → v\(new)"
        case (_, let new?): return "\(id) v\(new)"
        case (let old?, nil): return "\(id) v\(old)"
        default: return id
        }
    }

    /// The short note shown after an issue, rotate or redeliver line: the new credential's expiry, or the stores.
    package static func extra(_ change: PlannedChange) -> String {
        switch change.action {
        case .issue, .rotate:
            guard let lifespan = change.facts["lifespan"] else { return "" }
            return lifespan == "never" ? "never expires" : "expires in \(lifespan)"
        case .redeliver, .undeliver: return change.stores.map(\.description).joined(separator: ", ")
        default: return ""
        }
    }

    static func symbol(_ change: PlannedChange) -> (String, String) {
        switch change.action {
        case .issue: ("+", "32")
        case .rotate, .update: ("~", "33")
        case .redeliver: (">", "36")
        case .undeliver: ("<", "36")
        case .retire: ("-", "31")
        case .ghost: ("!", "35")
        }
    }

    static func paint(_ text: String, _ code: String, _ colors: Bool) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    var trailingSpacesRemoved: String {
        var text = self
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
