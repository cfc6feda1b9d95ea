import Foundation

/// What tells one version of a file from another without reading it: device, inode, size and modification time.
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
    /// The modification time, in seconds since the epoch (nanosecond resolution where the file system has it).
    package var modified: Double

    /// The stamp of the file at `path`, or nil when it cannot be stat'ed.
    package init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.path = path
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
}
