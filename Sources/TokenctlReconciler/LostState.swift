import Foundation

/// The refusal to treat lost state as a fresh start.
package enum LostState {
    /// Why an empty state beside earlier work is refused, and what to do.
    package static func message(signs: String, stateDescription: String, paths: [String]) -> String {
        "the state in \(stateDescription) records no tokens, but earlier work is still there: \(signs). "
            + "The state was probably lost or emptied; applying now would issue every token again and leave the old credentials "
            + "valid. Nothing was changed. Rebuild the state from the issuers and stores with: tokenctl state rebuild "
            + paths.map { "-f \($0)" }.joined(separator: " ")
            + " (then plan as usual), or restore the state from a backup. For issuers that rebuild cannot read (postgres, exec), "
            + "apply --start-from-empty-state issues every token again; revoke the old credentials afterwards (plan --refresh lists them)."
    }
}
