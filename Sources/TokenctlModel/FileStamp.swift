import Foundation

/// What tells one version of a file from another without reading it: device, inode, size, and the modification and
/// status-change times (a copy that keeps the size and the modification time still changes the latter).
///
/// ```swift
/// let before = FileStamp(path: "tokens.yaml")
/// // … later: the file was not replaced, resized or touched when this holds
/// FileStamp(path: "tokens.yaml") == before
/// ```
package struct FileStamp: Equatable, Sendable {
    /// The path it was read for.
    package var path: String
    /// The device and inode: a file replaced by a rename has another inode.
    package var device: UInt64
    package var inode: UInt64
    /// The length in bytes.
    package var size: Int64
    /// The modification time, in seconds since the epoch.
    package var modified: Double
    /// The modification and status-change times exactly, as seconds and nanoseconds.
    private var times: [Int]

    /// The stamp of the file at `path`, or nil when it cannot be stat'ed.
    package init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(path: path, info: info)
    }

    /// The stamp of what `fstat` or `stat` returned for `path`.
    package init(path: String, info: stat) {
        self.path = path
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        times = [info.st_mtim.tv_sec, info.st_mtim.tv_nsec, info.st_ctim.tv_sec, info.st_ctim.tv_nsec]
    }
}
