import TokenctlModel

extension PlanRenderer {
    /// The plan as Markdown, for a pull-request comment: a summary, then a table of changes with their reasons.
    package static func markdown(_ plan: Plan) -> String {
        var text = "### tokenctl plan\n\n"
        guard !plan.changes.isEmpty || !plan.held.isEmpty else {
            return text + "**No changes.** Issued credentials match the manifests.\n"
        }
        text += "**\(summary(plan))**\n\n"
        text += "| | Action | Token | Issuer | Reason |\n|---|---|---|---|---|\n"
        for change in plan.changes {
            let (symbol, _) = Self.symbol(change)
            let reason = "`\(change.reason.rawValue)`: \(escape(change.detail))"
            text += "| \(symbol) | \(change.action.rawValue) | `\(escape(subject(change)))` | \(escape(change.issuer)) | \(reason) |\n"
        }
        for held in plan.held {
            let reason = "`PolicyViolation`: \(escape(held.violations.joined(separator: " "))) (\(heldNote(held)))"
            text += "| ! | held | `\(escape(held.token.description))` | | \(reason) |\n"
        }
        text += "\n<sub>State serial \(plan.stateSerial), planned for \(plan.createdAt)"
        text += plan.refreshed ? ", issuer inventories refreshed.</sub>\n" : ".</sub>\n"
        return text
    }

    private static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "|": escaped += "\\|"
            case "\n": escaped += " "
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
