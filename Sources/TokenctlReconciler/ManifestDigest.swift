import Crypto
import Foundation
import TokenctlModel

/// A SHA-256 digest over the manifest files' names and contents, in a stable order: what a saved plan was made from.
package enum ManifestDigest {
    /// Why the digest could not be computed.
    package struct Unreadable: Error, CustomStringConvertible {
        package var description: String
    }

    /// The digest of `files`, or `Unreadable` naming a file that cannot be read.
    package static func of(_ files: [String]) throws(Unreadable) -> String {
        var hasher = SHA256()
        for file in files.sorted() {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw Unreadable(description: "cannot read '\(file)' to fingerprint the manifests")
            }
            hasher.update(data: Data((file as NSString).lastPathComponent.utf8))
            hasher.update(data: Data([0]))
            hasher.update(data: SHA256.hash(data: data).withUnsafeBytes { Data($0) })
        }
        return "sha256:" + Hex.string(hasher.finalize())
    }
}
