import Foundation
import TokenctlState

/// The `-f` roots a state is managed from, recorded by the first apply: a plan or apply from another set (a partial
/// `-f` list, which would retire everything the missing files declare) is refused, saying what differs.
package enum ManifestRoots {
    /// The state setting that holds the roots.
    package static let settingKey = "manifest_roots"

    /// The roots as recorded: each path's last component (`manifests`, `base.yaml`), so that the same repository checked
    /// out elsewhere (a CI runner, a mounted ConfigMap with the same name) is the same set; roots whose last components
    /// are equal keep as many parents as tell them apart (`a/manifests`, `b/manifests`).
    package static func names(_ paths: [String]) -> [String] {
        let components = Set(paths.map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path })
            .sorted().map { $0.split(separator: "/").map(String.init) }
        var depth = [Int](repeating: 1, count: components.count)
        while true {
            let names = components.indices.map { components[$0].suffix(depth[$0]).joined(separator: "/") }
            let clashing = Dictionary(grouping: names.indices, by: { names[$0] }).values
                .filter { $0.count > 1 }.joined().filter { depth[$0] < components[$0].count }
            if clashing.isEmpty { return Set(names).sorted() }
            for index in clashing { depth[index] += 1 }
        }
    }

    /// Why this run's roots may not be used with this state, or nil when they may. With `record`, a state that has no
    /// roots yet (new, or made by an older tokenctl) gets these, as does any state when `acceptNew` is given.
    package static func check(_ store: any StateStore, paths: [String], acceptNew: Bool, record: Bool) async throws(StateError) -> String? {
        let current = names(paths)
        let recorded = try await store.setting(settingKey).flatMap { text in
            try? JSONDecoder().decode([String].self, from: Data(text.utf8))
        }
        if let recorded, recorded != current, !acceptNew {
            let missing = recorded.filter { !current.contains($0) }, extra = current.filter { !recorded.contains($0) }
            var differences: [String] = []
            if !missing.isEmpty { differences.append("not given: " + missing.joined(separator: ", ")) }
            if !extra.isEmpty { differences.append("new: " + extra.joined(separator: ", ")) }
            return "this state is managed from the manifests at \(recorded.joined(separator: ", ")), and this run reads "
                + "\(current.joined(separator: ", ")) (\(differences.joined(separator: "; "))). A partial set would plan to retire "
                + "every token the others declare. Pass the same -f paths; or, when the new set is complete, pass "
                + "--new-manifest-roots to record it"
        }
        if record, recorded == nil || (acceptNew && recorded != current),
           let text = String(data: (try? JSONEncoder().encode(current)) ?? Data(), encoding: .utf8) {
            try await store.setSetting(settingKey, to: text)
        }
        return nil
    }
}
