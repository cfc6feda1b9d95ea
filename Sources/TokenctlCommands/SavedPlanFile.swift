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
        sealed.seal = SavedPlanSeal.key(stateDirectory: saved.stateDirectory).map { SavedPlanSeal.seal(saved, key: $0) }
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
        if let problem = SavedPlanSeal.problem(saved) {
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
}
