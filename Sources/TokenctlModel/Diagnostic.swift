/// One problem found in the manifests, tied to the place that causes it.
package struct Diagnostic: Hashable, Sendable {
    /// How serious a diagnostic is.
    package enum Severity: String, Hashable, Sendable, Comparable {
        /// The manifests are invalid; nothing may act on them.
        case error
        /// The manifests are valid but break a policy (exit code 3).
        case policy
        /// Worth a look; does not fail the run.
        case warning

        private var rank: Int {
            switch self {
            case .error: 0
            case .policy: 1
            case .warning: 2
            }
        }

        package static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
    }

    /// How serious the problem is.
    package var severity: Severity
    /// Where the problem is; `nil` for problems that belong to no file (such as a missing path).
    package var location: SourceLocation?
    /// A full sentence that says what is wrong and how to fix it.
    package var message: String
    /// A short stable identifier of the rule that produced the diagnostic, e.g. `unknown-field`.
    package var code: String
    /// The token a policy violation concerns: planning holds that token (no new credential) and no other.
    package var token: TokenID?

    /// Creates a diagnostic.
    package init(_ severity: Severity, _ code: String, _ message: String, at location: SourceLocation?, token: TokenID? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
        self.token = token
    }

    /// Orders diagnostics by file and position, errors before warnings at the same place.
    package static func sortedForDisplay(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.sorted { lhs, rhs in
            switch (lhs.location, rhs.location) {
            case (nil, .some): return true
            case (.some, nil): return false
            case let (.some(l), .some(r)) where l != r: return l < r
            default:
                if lhs.severity != rhs.severity { return lhs.severity < rhs.severity }
                return lhs.message < rhs.message
            }
        }
    }
}

/// The diagnostics of one run, with the counts that decide the exit code.
package struct DiagnosticSummary: Sendable {
    /// Number of errors.
    package var errors = 0
    /// Number of policy violations.
    package var policyViolations = 0
    /// Number of warnings.
    package var warnings = 0

    /// Counts the diagnostics by severity.
    package init(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics {
            switch diagnostic.severity {
            case .error: errors += 1
            case .policy: policyViolations += 1
            case .warning: warnings += 1
            }
        }
    }
}

/// A count with its noun, "1 token" or "2 tokens", for messages (`plural` for nouns not made with -s).
package func counted(_ count: Int, _ singular: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : plural ?? singular + "s")"
}
