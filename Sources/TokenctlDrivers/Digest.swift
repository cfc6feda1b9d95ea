import Crypto
import Foundation
import TokenctlModel

/// SHA-256 helpers.
enum Digest {
    static func sha256Hex(_ text: String) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: Data(text.utf8)))
    }
}
