import Foundation
import TokenctlModel
import TokenctlPlanner
import TokenctlStores

/// Reading and writing `plan --out` files: sealed with a key derived from the master key when one exists, so that a
/// changed byte is refused; and, whether sealed or not, checked at apply time against the plan the same state and
/// manifests give for the same moment.
///
/// ```swift
/// try SavedPlanFile.write(saved, to: "plan.json")
/// let again = try SavedPlanFile.read("plan.json")
/// ```
package enum SavedPlanFile {
    /// Why a plan file cannot be written or used; the message names the file and what to do.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Seals (when a master key exists) and writes the plan, replacing the file atomically.
    package static func write(_ saved: SavedPlan, to path: String) throws(Failure) {
        var sealed = saved
        sealed.seal = SavedPlanSeal.key(stateDirectory: saved.stateDirectory).map { SavedPlanSeal.seal(saved, key: $0) }
        do {
            try atomicWrite(Data(try PlanJSON.encode(sealed).utf8), to: path, mode: 0o644)
        } catch {
            throw Failure(description: "cannot save the plan to '\(path)' (\(error)); check the directory exists and is writable")
        }
    }

    /// Reads a plan file, refusing one that is truncated, of another format, or whose seal does not match.
    package static func read(_ path: String) throws(Failure) -> SavedPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read the plan file '\(path)'; check the path")
        }
        guard let saved = try? JSONDecoder().decode(SavedPlan.self, from: data) else {
            throw Failure(description: "'\(path)' is not a complete tokenctl plan (truncated or edited?); make a new one with tokenctl plan --out")
        }
        guard saved.kind == "tokenctl-plan", saved.plan.formatVersion == 1 else {
            throw Failure(description: "'\(path)' is not a tokenctl plan of a format this version reads; make a new one with tokenctl plan --out")
        }
        if let problem = SavedPlanSeal.problem(saved) {
            throw Failure(description: "'\(path)' \(problem); nothing was changed. Make a new plan with tokenctl plan --out")
        }
        return saved
    }

    /// A path made absolute against the current directory.
    package static func absolute(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }
}
