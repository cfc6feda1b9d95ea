import Foundation

/// Scratch directories for tests, all under one directory per test process that is removed when the process exits,
/// so that tests which do not clean up after themselves (or fail half-way) leave nothing in the temporary directory.
public enum Scratch {
    /// The directory of this test process's scratch directories.
    public static let root: String = {
        let path = rootPath()
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.rootPath()) }
        return path
    }()

    // Recomputed by the exit handler, which cannot capture anything.
    static func rootPath() -> String { NSTemporaryDirectory() + "tokenctl-test-run-\(getpid())" }

    /// A new, empty directory named after `prefix`.
    public static func directory(_ prefix: String) -> String {
        let path = root + "/" + prefix + "-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A path for a directory `prefix-UUID` that does not exist yet.
    public static func path(_ prefix: String) -> String { root + "/" + prefix + "-" + UUID().uuidString }
}
