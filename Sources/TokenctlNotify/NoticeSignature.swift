import Crypto
import Foundation

/// The `X-Tokenctl-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, so a receiver can check that
/// a notice came from tokenctl and is recent (it compares `t` with its clock to refuse replays).
///
/// ```swift
/// let header = NoticeSignature.header(body: body, key: Array("signing-key".utf8), at: 1_796_040_000)
/// // "t=1796040000,v1=5d1c…"
/// ```
package enum NoticeSignature {
    /// The header's name.
    package static let headerName = "X-Tokenctl-Signature"

    /// The header's value for `body` signed with `key` at `at` (seconds since the epoch).
    package static func header(body: [UInt8], key: [UInt8], at: Int64) -> String {
        "t=\(at),v1=" + hex(body: body, key: key, at: at)
    }

    /// Whether `header` is a valid signature of `body` under `key`: what a receiver does.
    package static func verify(header: String, body: [UInt8], key: [UInt8]) -> Bool {
        var timestamp: Int64?
        var signature: String?
        for part in header.split(separator: ",") {
            if part.hasPrefix("t=") { timestamp = Int64(part.dropFirst(2)) }
            if part.hasPrefix("v1=") { signature = String(part.dropFirst(3)) }
        }
        guard let timestamp, let signature else { return false }
        let expected = hex(body: body, key: key, at: timestamp)
        // Compared in constant time: a receiver's comparison must not leak how much of a forgery matched.
        return expected.utf8.count == signature.utf8.count
            && zip(expected.utf8, signature.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func hex(body: [UInt8], key: [UInt8], at: Int64) -> String {
        var message = Array("\(at).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}
