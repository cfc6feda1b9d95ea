import Crypto
import Foundation
import TokenctlModel

/// SHA-256 helpers.
package enum Digest {
    /// `sha256:` and the hex digest of the UTF-8 text.
    package static func sha256Hex(_ text: String) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: Data(text.utf8)))
    }
}
