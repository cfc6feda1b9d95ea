import ArgumentParser
import Crypto
import Foundation
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlReconciler
import TokenctlStores

/// Reading and writing `plan --out` files: sealed with a key derived from the master key when one exists, so that a
/// changed byte is refused; and, whether sealed or not, checked at apply time against the plan the same state and
/// manifests give for the same moment (`mismatch`).
enum SavedPlanFile {
    static func write(_ saved: SavedPlan, to path: String) throws {
        var sealed = saved
        sealed.seal = sealKey(stateDirectory: saved.stateDirectory).map { seal(saved, key: $0) }
        do {
            try atomicWrite(Data(try PlanJSON.encode(sealed).utf8), to: path, mode: 0o644)
        } catch {
            printError("tokenctl: error: cannot save the plan to '\(path)' (\(error)); check the directory exists and is writable")
            throw ExitCode(1)
        }
    }

    static func read(_ path: String) throws -> SavedPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("tokenctl: error: cannot read the plan file '\(path)'; check the path")
            throw ExitCode(1)
        }
        let saved: SavedPlan
        do {
            saved = try JSONDecoder().decode(SavedPlan.self, from: data)
        } catch {
            printError("tokenctl: error: '\(path)' is not a complete tokenctl plan (truncated or edited?); make a new one with tokenctl plan --out")
            throw ExitCode(1)
        }
        guard saved.kind == "tokenctl-plan", saved.plan.formatVersion == 1 else {
            printError("tokenctl: error: '\(path)' is not a tokenctl plan of a format this version reads; make a new one with tokenctl plan --out")
            throw ExitCode(1)
        }
        if let problem = sealProblem(saved) {
            printError("tokenctl: error: '\(path)' \(problem); nothing was changed. Make a new plan with tokenctl plan --out")
            throw ExitCode(1)
        }
        return saved
    }

    /// A path made absolute against the current directory.
    static func absolute(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }

    /// The key that seals saved plans: derived from the master key (never created for a plan), nil while none exists.
    static func sealKey(stateDirectory: String) -> SymmetricKey? {
        guard let master = try? MasterKey.resolve(.environment(MasterKey.variable), stateDirectory: stateDirectory, create: false) else {
            return nil
        }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Data("tokenctl-plan-v1".utf8), outputByteCount: 32)
    }

    static let sealPrefix = "hmac-sha256:"

    /// The seal of a saved plan: an HMAC over its canonical JSON without the seal.
    static func seal(_ saved: SavedPlan, key: SymmetricKey) -> String {
        var unsealed = saved
        unsealed.seal = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let canonical = (try? encoder.encode(unsealed)) ?? Data()
        return sealPrefix + Hex.string(HMAC<SHA256>.authenticationCode(for: canonical, using: key))
    }

    /// Why a plan cannot be trusted, or nil. An unsealed plan is accepted only while no master key exists (it was made
    /// before the first apply); planning again at apply time checks every plan in any case.
    static func sealProblem(_ saved: SavedPlan) -> String? {
        guard let recorded = saved.seal else {
            // Only a plan made against no state at all can lack a seal (no master key existed yet); a plan of an existing
            // state without one was not written by tokenctl, or its seal was removed. (Claiming serial 0 makes it stale.)
            return saved.plan.stateSerial == 0 || sealKey(stateDirectory: saved.stateDirectory) == nil ? nil
                : "has no seal although a master key exists for \(saved.stateDirectory): it was not written by tokenctl plan, or its seal was removed"
        }
        guard let key = sealKey(stateDirectory: saved.stateDirectory) else {
            return "is sealed with the master key, which is not available here to check it (set TOKENCTL_MASTER_KEY, or keep "
                + "\(saved.stateDirectory)/master.key)"
        }
        guard seal(saved, key: key) == recorded else {
            return "was changed after tokenctl plan wrote it (its seal does not match its content), or the master key was rotated since"
        }
        return nil
    }
}
