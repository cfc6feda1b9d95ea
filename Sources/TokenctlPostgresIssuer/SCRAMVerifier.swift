import Crypto
import Foundation
import _CryptoExtras

/// A SCRAM-SHA-256 password verifier as PostgreSQL stores it (RFC 5802/7677), computed on this side so that
/// the plaintext password never reaches the server, its logs or `pg_stat_statements`.
///
/// ```swift
/// let verifier = try SCRAMVerifier.make(password: "s3cret")
/// // "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>", sent as: CREATE ROLE … PASSWORD '<verifier>'
/// ```
package enum SCRAMVerifier {
    /// PostgreSQL's default iteration count (`scram_iterations`).
    package static let iterations = 4_096

    /// A verifier with a fresh random 16-byte salt. The password must be ASCII (SASLprep leaves it unchanged);
    /// tokenctl's generated passwords are.
    package static func make(password: String, iterations: Int = iterations) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try make(password: password, salt: salt, iterations: iterations)
    }

    /// A verifier with the given salt (for tests against known vectors).
    package static func make(password: String, salt: [UInt8], iterations: Int) throws -> String {
        let salted = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                        unsafeUncheckedRounds: iterations)
        let clientKey = HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted)
        let storedKey = SHA256.hash(data: Data(clientKey))
        let serverKey = HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted)
        return "SCRAM-SHA-256$\(iterations):\(Data(salt).base64EncodedString())$\(Data(storedKey).base64EncodedString()):"
            + Data(serverKey).base64EncodedString()
    }
}
