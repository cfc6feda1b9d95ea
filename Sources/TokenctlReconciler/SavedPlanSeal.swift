import Crypto
import Foundation
import TokenctlModel
import TokenctlPlanner

/// The seal of a `plan --out` file: an HMAC keyed from the master key, so that a changed byte is refused. Whether
/// sealed or not, a saved plan is also checked at apply time against the plan the same state and manifests give.
package enum SavedPlanSeal {
    /// The key that seals saved plans: derived from the master key (never created for a plan), nil while none exists.
    package static func key(stateDirectory: String) -> SymmetricKey? {
        guard let master = try? MasterKey.resolve(.environment(MasterKey.variable), stateDirectory: stateDirectory, create: false) else {
            return nil
        }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Data("tokenctl-plan-v1".utf8), outputByteCount: 32)
    }

    package static let prefix = "hmac-sha256:"

    /// The seal of a saved plan: an HMAC over its canonical JSON without the seal.
    package static func seal(_ saved: SavedPlan, key: SymmetricKey) -> String {
        var unsealed = saved
        unsealed.seal = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let canonical = (try? encoder.encode(unsealed)) ?? Data()
        return prefix + Hex.string(HMAC<SHA256>.authenticationCode(for: canonical, using: key))
    }

    /// Why a plan cannot be trusted, or nil. An unsealed plan is accepted only while no master key exists (it was made
    /// before the first apply); planning again at apply time checks every plan in any case.
    package static func problem(_ saved: SavedPlan) -> String? {
        guard let recorded = saved.seal else {
            // Only a plan made against no state at all can lack a seal (no master key existed yet); a plan of an existing
            // state without one was not written by tokenctl, or its seal was removed. (Claiming serial 0 makes it stale.)
            return saved.plan.stateSerial == 0 || key(stateDirectory: saved.stateDirectory) == nil ? nil
                : "has no seal although a master key exists for \(saved.stateDirectory): it was not written by tokenctl plan, or its seal was removed"
        }
        guard let key = key(stateDirectory: saved.stateDirectory) else {
            return "is sealed with the master key, which is not available here to check it (set TOKENCTL_MASTER_KEY, or keep "
                + "\(saved.stateDirectory)/master.key)"
        }
        guard seal(saved, key: key) == recorded else {
            return "was changed after tokenctl plan wrote it (its seal does not match its content), or the master key was rotated since"
        }
        return nil
    }
}
