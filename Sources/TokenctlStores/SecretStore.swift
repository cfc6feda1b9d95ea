import Foundation
import TokenctlDrivers
import TokenctlModel

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the directory.
package func atomicWrite(_ data: Data, to path: String, mode: mode_t = 0o600) throws(StoreError) {
    let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
    let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard descriptor >= 0 else { throw .io(path: path, detail: String(cString: strerror(errno))) }
    let failure = writeAndSync(data, to: descriptor)
    fchmod(descriptor, mode)
    close(descriptor)
    if let failure {
        unlink(temporary)
        throw .io(path: path, detail: failure)
    }
    guard rename(temporary, path) == 0 else {
        let detail = String(cString: strerror(errno))
        unlink(temporary)
        throw .io(path: path, detail: detail)
    }
    let directoryDescriptor = open(directory, O_RDONLY)
    if directoryDescriptor >= 0 {
        fsync(directoryDescriptor)
        close(directoryDescriptor)
    }
}

/// Writes all of `data` to an open file and fsyncs it; the system's reason when that failed.
func writeAndSync(_ data: Data, to descriptor: Int32) -> String? {
    var failure: String?
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = Glibc.write(descriptor, raw.baseAddress?.advanced(by: offset), raw.count - offset)
            if written <= 0 {
                failure = String(cString: strerror(errno))
                return
            }
            offset += written
        }
    }
    if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
    return failure
}
