import Crypto
import Foundation
import TokenctlModel

/// The builtin issuer's token format: `<prefix>_<43 base62 characters: 256 random bits><6 base62 characters: CRC-32>`.
///
/// The prefix lets secret scanners recognise tokenctl tokens; the checksum lets `tokenctl verify`
/// reject a mistyped token without a lookup.
///
/// ```swift
/// let token = TokenFormat.generate(prefix: "tkc")   // tkc_4Fq…
/// TokenFormat.hasValidChecksum(token)               // true
/// ```
package enum TokenFormat {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let randomLength = 43
    static let checksumLength = 6

    /// A new token with 256 bits from the system's cryptographic random source.
    package static func generate(prefix: String) -> String {
        var words = randomWords(4)
        let random = base62(&words, length: randomLength)
        return "\(prefix)_\(random)\(checksum(of: random))"
    }

    /// Words from the kernel's cryptographic random source (`getrandom`, as the standard generator uses) in one call:
    /// the standard generator makes one call per word, and an apply of 100,000 tokens made half a million of them.
    static func randomWords(_ count: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        let filled = words.withUnsafeMutableBytes { buffer -> Bool in
            guard let getrandom = Self.getrandom, let base = buffer.baseAddress else { return false }
            var offset = 0
            while offset < buffer.count {
                let read = getrandom(base + offset, buffer.count - offset, 0)
                if read < 0 && errno == EINTR { continue }
                guard read > 0 else { return false }
                offset += read
            }
            return true
        }
        if !filled {
            var generator = SystemRandomNumberGenerator()
            for index in words.indices { words[index] = generator.next() }
        }
        return words
    }

    /// glibc's `getrandom`, looked up rather than imported: Swift's Glibc module does not include <sys/random.h>.
    private static let getrandom: (@convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int)? =
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getrandom").map {
            unsafeBitCast($0, to: (@convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int).self)
        }

    /// The 6-character checksum of the random part.
    static func checksum(of random: String) -> String {
        String(decoding: checksum(of: random.utf8), as: UTF8.self)
    }

    private static func checksum<Bytes: Sequence>(of random: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var value = [UInt64(crc32(random))]
        return Array(base62(&value, length: checksumLength).utf8)
    }

    /// Whether `token` has the form `<prefix>_<random><checksum>` and its checksum matches.
    package static func hasValidChecksum(_ token: String) -> Bool {
        var token = token
        return token.withUTF8 { hasValidChecksum(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The prefix of a token (before the last `_`), if it has one.
    package static func prefix(of token: String) -> String? {
        token.lastIndex(of: "_").map { String(token[..<$0]) }
    }

    /// The hash stored in place of the token.
    package static func hash(_ token: String) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: Data(token.utf8)))
    }

    /// A hint that identifies a token without revealing it: `tkc_…` and the last 4 checksum characters.
    package static func hint(_ token: String) -> String {
        let bytes = token.utf8
        // Byte-wise for the builtin's own tokens (ASCII, where bytes are characters): Character-wise search and suffix
        // were a noticeable share of issuing.
        guard bytes.allSatisfy({ $0 < 0x80 }), let underscore = bytes.lastIndex(of: UInt8(ascii: "_")) else {
            return "\(prefix(of: token) ?? "")_…\(token.suffix(4))"
        }
        return "\(token[..<underscore])_…\(String(decoding: bytes.suffix(4), as: UTF8.self))"
    }

    private static func base62(_ words: inout [UInt64], length: Int) -> String {
        var characters: [UInt8] = []
        characters.reserveCapacity(length)
        for _ in 0..<length {
            // Long division of the big number in `words` by 62.
            var remainder: UInt64 = 0
            for index in words.indices {
                let (quotient, rest) = (62 as UInt64).dividingFullWidth((remainder, words[index]))
                words[index] = quotient
                remainder = rest
            }
            characters.append(alphabet[Int(remainder)])
        }
        return String(decoding: characters, as: UTF8.self)
    }

    private static func crc32<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = (crc >> 8) ^ crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] }
        return ~crc
    }

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        return crc
    }

    private static let isAlphabet: [Bool] = (0..<256).map { alphabet.contains(UInt8($0)) }

    /// `hasValidChecksum` over the token's bytes, without making text of them (the introspection request path).
    package static func hasValidChecksum(bytes token: UnsafeRawBufferPointer) -> Bool {
        guard let underscore = token.lastIndex(of: UInt8(ascii: "_")) else { return false }
        let body = UnsafeRawBufferPointer(rebasing: token[(underscore + 1)...])
        guard body.count == randomLength + checksumLength, body.allSatisfy({ isAlphabet[Int($0)] }) else { return false }
        let expected = checksum(of: body.prefix(randomLength))
        // Compare in constant time: the checksum is not secret, but the habit costs nothing.
        var difference: UInt8 = 0
        for (a, b) in zip(body.suffix(checksumLength), expected) { difference |= a ^ b }
        return difference == 0
    }
}

/// The SHA-256 of a token as four words: the key of an in-memory index of tokens, hashed and compared without text.
package struct TokenDigest: Hashable, Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64)

    /// The digest of a presented token's bytes.
    package init(token: UnsafeRawBufferPointer) {
        words = SHA256.hash(data: token).withUnsafeBytes(Self.words)
    }

    /// A digest stored as 32 bytes; nil for any other length.
    package init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        words = bytes.withUnsafeBytes(Self.words)
    }

    private static func words(_ raw: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64) {
        (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
         raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    package static func == (lhs: TokenDigest, rhs: TokenDigest) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    package func hash(into hasher: inout Hasher) {
        // The words are uniformly random already: one of them keys the table as well as all four would.
        hasher.combine(words.0)
    }
}
