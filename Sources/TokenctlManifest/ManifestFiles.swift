import Foundation
import TokenctlModel

/// Finds the `.yaml`/`.yml` files under the paths given with `-f`, without leaving them.
///
/// The rule, documented in docs/security.md: a symbolic link is followed only when its target lies inside the
/// directory it belongs to — the `-f` directory for a link found while walking it, the link's own directory for
/// a link named with `-f` (to a file or a directory). Manifests come from a repository that others write to, so a link must not turn
/// `tokenctl plan` into a way to read (and echo in diagnostics) any file the runner can read.
enum ManifestFiles {
    static func discover(paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var files: [String] = []
        var seen = Set<String>()
        for path in paths {
            var info = stat()
            guard lstat(path, &info) == 0 else {
                diagnostics.append(Diagnostic(.error, "missing-path", "'\(path)' does not exist; pass a manifest file or a directory of them with -f",
                                              at: nil))
                continue
            }
            // `lstat("link/")` follows the link, so trailing slashes go before the path itself is examined.
            var trimmed = path
            while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
            if lstat(trimmed, &info) == 0, FileType(info) == .link {
                let parent = realPath((trimmed as NSString).deletingLastPathComponent.isEmpty ? "." : (trimmed as NSString).deletingLastPathComponent)
                guard let target = realPath(trimmed), let parent, contains(parent, target) else {
                    diagnostics.append(outsideRoot(path, root: (trimmed as NSString).deletingLastPathComponent, isDirectory: false))
                    continue
                }
            }
            if leavesWorkingDirectory(trimmed) {
                diagnostics.append(Diagnostic(.error, "symlink-outside-root",
                    "'\(path)' lies in the current directory but leads out of it through a symbolic link in its path; tokenctl follows "
                    + "links only within the paths it is given, so that a repository cannot point it at other files; pass the real "
                    + "path with -f", at: nil))
                continue
            }
            guard stat(path, &info) == 0, FileType(info) == .directory else {
                if seen.insert(path).inserted { files.append(path) }
                continue
            }
            guard let root = realPath(path) else { continue }
            var found: [String] = []
            let base = path.hasSuffix("/") ? String(path.dropLast()) : path
            let diagnosticsBefore = diagnostics.count
            walk(base, root: root, display: path, into: &found, diagnostics: &diagnostics)
            if found.isEmpty && diagnostics.count == diagnosticsBefore {
                diagnostics.append(Diagnostic(.error, "no-manifests", "'\(path)' contains no .yaml or .yml files; pass the directory that holds the manifests",
                                              at: nil))
            }
            for file in found.sorted() where seen.insert(file).inserted { files.append(file) }
        }
        return files
    }

    /// Collects manifest files under `directory`; links are followed only to files inside `root` (a real path).
    private static func walk(_ directory: String, root: String, display: String, into found: inout [String],
                             diagnostics: inout [Diagnostic]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where !name.hasPrefix(".") {
            // Hidden entries such as .git and .tokenctl hold no manifests.
            let full = directory + "/" + name
            let isManifestName = name.hasSuffix(".yaml") || name.hasSuffix(".yml")
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            switch FileType(info) {
            case .directory:
                walk(full, root: root, display: display, into: &found, diagnostics: &diagnostics)
            case .link:
                var targetInfo = stat()
                let target = realPath(full)
                let isDirectory = stat(full, &targetInfo) == 0 && FileType(targetInfo) == .directory
                // Inside the root but in a hidden directory (.tokenctl, .git) counts as outside: the walk never goes there.
                // Kubernetes' `..data`/`..2026_…` directories of a mounted ConfigMap are where its files really live.
                guard let target, contains(root, target),
                      !target.dropFirst(root.count).split(separator: "/").contains(where: { $0.hasPrefix(".") && !$0.hasPrefix("..") }) else {
                    if isManifestName || isDirectory { diagnostics.append(outsideRoot(full, root: display, isDirectory: isDirectory)) }
                    continue
                }
                // A link to a directory inside the root adds nothing: its files are found under their own path.
                if isManifestName && !isDirectory { found.append(full) }
            case .regular, .other:
                // Special files (FIFOs, devices) are kept so that reading them fails with a clear diagnostic.
                if isManifestName { found.append(full) }
            }
        }
    }

    private static func outsideRoot(_ link: String, root: String, isDirectory: Bool) -> Diagnostic {
        let what = isDirectory ? "a directory" : "a file"
        let place = root.isEmpty ? "its own directory" : "'\(root)'"
        return Diagnostic(.error, "symlink-outside-root",
            "'\(link)' is a symbolic link to \(what) outside \(place), or to nothing; tokenctl follows links only to files "
            + "inside the paths given with -f, so that a manifest repository cannot make it read other files; "
            + "replace the link with the file itself, or pass the target's real path with -f", at: nil)
    }

    /// Whether a path written inside the current directory (the repository a CI job runs in) resolves outside it: a link
    /// somewhere along it, such as `manifests` → `/`, leads out. Paths written outside the current directory are the
    /// operator's own choice and are taken as given.
    static func leavesWorkingDirectory(_ path: String) -> Bool {
        let cwd = FileManager.default.currentDirectoryPath
        var components: [Substring] = []
        for component in ((path.hasPrefix("/") ? path : cwd + "/" + path) as String).split(separator: "/") {
            if component == "." || component.isEmpty { continue }
            if component == ".." { _ = components.popLast() } else { components.append(component) }
        }
        let lexical = "/" + components.joined(separator: "/")
        guard contains(cwd, lexical), let real = realPath(path), let realCWD = realPath(cwd) else { return false }
        return !contains(realCWD, real)
    }

    /// Whether `path` is `root` or lies under it (both real paths).
    private static func contains(_ root: String, _ path: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// The path with every link resolved, or nil when it leads nowhere.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// What `lstat` or `stat` says a path is.
    enum FileType {
        case regular, directory, link, other

        init(_ info: stat) {
            switch info.st_mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .link
            default: self = .other
            }
        }

        /// How a message names a file of this mode.
        static func describe(_ info: stat) -> String {
            switch info.st_mode & S_IFMT {
            case S_IFIFO: "a named pipe (FIFO)"
            case S_IFCHR: "a character device"
            case S_IFBLK: "a block device"
            case S_IFSOCK: "a socket"
            case S_IFDIR: "a directory"
            default: "not a regular file"
            }
        }
    }
}

/// Reads manifest files: regular files only, never more than a bound, never blocking on a pipe.
enum ManifestFileReader {
    /// Why a file was not read.
    enum Failure: Error, Equatable {
        case unreadable
        case notRegular(String)
        case tooLarge(Int)
    }

    /// The whole file, or why it cannot be a manifest. Opening without blocking and checking the opened file
    /// (not the path) means a FIFO or a device swapped in after discovery is refused too.
    static func read(_ path: String, limit: Int) -> Result<[UInt8], Failure> {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(.unreadable) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(.unreadable) }
        guard ManifestFiles.FileType(info) == .regular else { return .failure(.notRegular(ManifestFiles.FileType.describe(info))) }
        let size = Int(info.st_size)
        guard size <= limit else { return .failure(.tooLarge(size)) }
        guard let bytes = FileContents.read(descriptor: descriptor, expectedSize: size, limit: limit) else {
            return .failure(.unreadable)
        }
        guard bytes.count <= limit else { return .failure(.tooLarge(bytes.count)) }
        return .success(bytes)
    }
}
