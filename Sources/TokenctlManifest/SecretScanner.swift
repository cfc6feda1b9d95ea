import Foundation

/// Spots values that look like credentials, so that no secret is ever kept in a manifest.
///
/// ```swift
/// SecretScanner.finding(in: "ghp_" + String(repeating: "a1B2", count: 9))  // "a GitHub token (ghp_…)"
/// SecretScanner.finding(in: "payments/orders-api-ci")                      // nil
/// ```
public enum SecretScanner {
    /// Known credential prefixes, the minimum length of what follows, and what they are.
    static let prefixes: [(prefix: [UInt8], minimumRest: Int, name: String)] = [
        ("ghp_", 20, "a GitHub token"), ("gho_", 20, "a GitHub OAuth token"), ("ghu_", 20, "a GitHub user token"),
        ("ghs_", 20, "a GitHub app token"), ("ghr_", 20, "a GitHub refresh token"), ("github_pat_", 20, "a GitHub fine-grained token"),
        ("glpat-", 16, "a GitLab token"), ("gldt-", 16, "a GitLab deploy token"),
        ("xoxb-", 10, "a Slack bot token"), ("xoxp-", 10, "a Slack user token"), ("xoxa-", 10, "a Slack token"),
        ("xoxs-", 10, "a Slack token"), ("xapp-", 10, "a Slack app token"),
        ("AKIA", 16, "an AWS access key id"), ("ASIA", 16, "an AWS temporary access key id"),
        ("sk_live_", 16, "a Stripe secret key"), ("rk_live_", 16, "a Stripe restricted key"), ("sk-proj-", 20, "an OpenAI key"),
        ("AIza", 30, "a Google API key"), ("npm_", 30, "an npm token"), ("pypi-", 30, "a PyPI token"),
        ("tkc_", 20, "a tokenctl token"), ("dop_v1_", 30, "a DigitalOcean token"), ("hvs.", 20, "a Vault token"),
    ].map { (Array($0.0.utf8), $0.1, $0.2) }

    /// The shortest word checked for high entropy.
    static let entropyMinimumLength = 24
    /// Bits per character above which a long token-alphabet word counts as random.
    static let entropyThreshold = 4.0

    /// What the value looks like, e.g. "a GitHub token (ghp_…)", or nil when it looks harmless.
    public static func finding(in value: String) -> String? {
        // Short values cannot hold any credential the scanner knows.
        guard value.utf8.count >= 14 else { return nil }
        var value = value
        return value.withUTF8 { bytes in scan(bytes) }
    }

    /// What the UTF-8 text looks like, as `finding(in:)` for a string.
    static func finding(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        bytes.count >= 14 ? scan(bytes) : nil
    }

    /// `line` with every word that looks like a secret replaced by `(sensitive)`, for echoing source lines.
    public static func redact(_ line: String) -> String {
        var line = line
        return line.withUTF8 { bytes in
            if containsPEMMarker(bytes) { return "(sensitive)" }
            var output: [UInt8] = []
            output.reserveCapacity(bytes.count)
            var start = 0
            // A source line also has YAML punctuation around values: treat it as separating words too.
            func separates(_ byte: UInt8) -> Bool {
                isSeparator(byte) || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "[")
                    || byte == UInt8(ascii: "]") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "#")
            }
            while start < bytes.count {
                var end = start
                while end < bytes.count, separates(bytes[end]) { end += 1 }
                output.append(contentsOf: bytes[start..<end])
                start = end
                while end < bytes.count, !separates(bytes[end]) { end += 1 }
                let word = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if word.count >= 14, scanWord(word) != nil {
                    output.append(contentsOf: Array("(sensitive)".utf8))
                } else {
                    output.append(contentsOf: word)
                }
                start = end
            }
            return String(decoding: output, as: UTF8.self)
        }
    }

    /// Why a source line must not be echoed, or nil when it may be: any word the scanner flags, a URL that carries a
    /// password (`scheme://user:password@host`), or a credential-named variable given a value (`DB_PASSWORD=…`).
    public static func lineFinding(_ line: String) -> String? {
        if line.utf8.count >= 14, redact(line) != line { return "a value that looks like a credential" }
        if let scheme = line.range(of: "://") {
            let authority = line[scheme.upperBound...].prefix { $0 != "/" && $0 != " " && $0 != "\t" && $0 != "\"" && $0 != "'" }
            if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") { return "a URL with a password" }
        }
        if let (name, value) = setting(in: line), !value.isEmpty, !value.hasPrefix("env:"), !value.hasPrefix("file:") {
            let upper = name.uppercased()
            if credentialNameMarkers.contains(where: { upper.contains($0) }), !manifestFieldNames.contains(String(name)) {
                return "a credential-named setting with a value"
            }
        }
        return nil
    }

    /// `NAME=value`, `export NAME=value` or `name: value` at the start of a line, as name and trimmed value.
    private static func setting(in line: String) -> (name: Substring, value: Substring)? {
        var rest = line.drop { $0 == " " || $0 == "\t" }
        if rest.hasPrefix("- ") { rest = rest.dropFirst(2) }
        if rest.hasPrefix("export ") { rest = rest.dropFirst(7) }
        rest = rest.drop { $0 == " " || $0 == "{" || $0 == "[" }
        // A quoted key (`"db_password": …`) counts as its name.
        if let quote = rest.first, quote == "\"" || quote == "'" { rest = rest.dropFirst() }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
        guard !name.isEmpty else { return nil }
        var after = rest[name.endIndex...].drop { $0 == " " || $0 == "\"" || $0 == "'" }
        guard let separator = after.first else { return nil }
        after = after.dropFirst()
        if separator == ":" {
            guard after.isEmpty || after.first == " " || after.first == "\t" else { return nil }
        } else if separator != "=" {
            return nil
        }
        let value = after.drop { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" }
        return (name, value)
    }

    /// The manifest format's own fields (`secretFormat`, `permanentTokens`) name no secret.
    private static let manifestFieldNames = Set(ManifestFields.table.values.joined())

    /// Parts of variable names that hold credentials.
    static let credentialNameMarkers = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL"]

    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if containsPEMMarker(bytes) { return "a PEM block" }
        var start = 0
        while start < bytes.count {
            while start < bytes.count, isSeparator(bytes[start]) { start += 1 }
            var end = start
            while end < bytes.count, !isSeparator(bytes[end]) { end += 1 }
            if end - start >= 14, let finding = scanWord(UnsafeBufferPointer(rebasing: bytes[start..<end])) { return finding }
            start = end
        }
        return nil
    }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == 32 || byte == 9 || byte == 10 || byte == 13 || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"")
            || byte == UInt8(ascii: "'")
    }

    private static func scanWord(_ word: UnsafeBufferPointer<UInt8>) -> String? {
        // A `key=value` word: judge the value.
        var word = word
        if let equals = word.firstIndex(of: UInt8(ascii: "=")), equals > 0, equals < word.count - 1 {
            word = UnsafeBufferPointer(rebasing: word[(equals + 1)...])
        }
        for known in prefixes where known.prefix[0] == word[0] && word.count >= known.prefix.count + known.minimumRest {
            if word.starts(with: known.prefix) {
                let rest = word[known.prefix.count...]
                if rest.allSatisfy(isTokenByte) {
                    return "\(known.name) (\(String(decoding: known.prefix, as: UTF8.self))…)"
                }
            }
        }
        guard word.count >= entropyMinimumLength, word.allSatisfy(isTokenByte) else { return nil }
        // A file path is judged segment by segment: a long path is not a random string, a random segment in it may be.
        if let first = word.first, first == UInt8(ascii: "/") || first == UInt8(ascii: ".") || first == UInt8(ascii: "~") {
            for segment in word.split(separator: UInt8(ascii: "/")) {
                // Generated names such as `tokenctl-e2e-<UUID>` are identifiers: judge what is left around the UUID.
                var rest = Array(segment)
                var index = 0
                while index + 36 <= rest.count {
                    if rest[index..<index + 36].withUnsafeBufferPointer({ isUUID($0[...]) }) {
                        rest.removeSubrange(index..<index + 36)
                    } else {
                        index += 1
                    }
                }
                if let finding = rest.withUnsafeBufferPointer({ scanRandom($0) }) { return finding }
            }
            return nil
        }
        return scanRandom(word)
    }

    /// `8-4-4-4-12` hexadecimal: an identifier, not a secret.
    private static func isUUID(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard bytes.count == 36 else { return false }
        for (offset, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(offset) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                let isHex = (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 70) || (byte >= 97 && byte <= 102)
                guard isHex else { return false }
            }
        }
        return true
    }

    /// The entropy rule alone: long, mixed character classes, high Shannon entropy.
    private static func scanRandom(_ word: UnsafeBufferPointer<UInt8>) -> String? {
        guard word.count >= entropyMinimumLength else { return nil }
        var hasUpper = false, hasLower = false, hasDigit = false
        for byte in word {
            if byte >= 65 && byte <= 90 { hasUpper = true } else if byte >= 97 && byte <= 122 { hasLower = true } else if byte >= 48 && byte <= 57 {
                hasDigit = true
            }
        }
        let classes = (hasUpper ? 1 : 0) + (hasLower ? 1 : 0) + (hasDigit ? 1 : 0)
        guard classes >= 2, shannonEntropy(word) >= entropyThreshold else { return nil }
        return "a long random string of \(word.count) characters"
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    static func shannonEntropy(_ word: UnsafeBufferPointer<UInt8>) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for byte in word { counts[Int(byte)] += 1 }
        let total = Double(word.count)
        var entropy = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / total
            entropy -= p * log2(p)
        }
        return entropy
    }

    /// Whether `bytes` holds `-----BEGIN`; a static string, so that scanning every value allocates nothing.
    private static func containsPEMMarker(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let marker: StaticString = "-----BEGIN"
        guard let base = bytes.baseAddress, bytes.count >= marker.utf8CodeUnitCount else { return false }
        let length = marker.utf8CodeUnitCount
        var index = 0
        while index + length <= bytes.count {
            if bytes[index] == UInt8(ascii: "-"), memcmp(base + index, marker.utf8Start, length) == 0 { return true }
            index += 1
        }
        return false
    }
}
