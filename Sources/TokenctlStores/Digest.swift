import Crypto
import Foundation

/// SHA-256 helpers.
enum Digest {
    static func sha256Hex(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
