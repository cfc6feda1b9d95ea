import Foundation

/// Where the embedded state lives: `.tokenctl/` beside the manifests, or `--state-dir`.
package enum StateLocation {
    /// The state directory for manifests at `paths` (the first path's directory), unless `explicit` is given.
    package static func directory(explicit: String?, manifestPaths paths: [String]) -> String {
        if let explicit { return explicit }
        guard let first = paths.first else { return ".tokenctl" }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: first, isDirectory: &isDirectory)
        let base = exists && isDirectory.boolValue ? first : (first as NSString).deletingLastPathComponent
        return ((base.isEmpty ? "." : base) as NSString).appendingPathComponent(".tokenctl")
    }

    /// Creates the directory (0700) with a `.gitignore` that keeps everything in it out of git.
    package static func prepare(_ directory: String) throws(StateError) {
        let manager = FileManager.default
        do {
            if !manager.fileExists(atPath: directory) {
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            let ignore = (directory as NSString).appendingPathComponent(".gitignore")
            if !manager.fileExists(atPath: ignore) {
                try Data("# tokenctl state: never commit it.\n*\n".utf8).write(to: URL(fileURLWithPath: ignore))
            }
        } catch {
            throw .unavailable(path: directory, detail: "cannot create it: \(error.localizedDescription)")
        }
    }
}
