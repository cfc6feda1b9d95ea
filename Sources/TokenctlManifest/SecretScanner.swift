import Foundation

/// Spots values that look like credentials, so that no secret is ever kept in a manifest.
///
/// Text is read as runs of token characters (letters, digits and `+/=_-.`). A run is flagged when it starts with a
/// known credential prefix (`ghp_`, `glpat-`, `AKIA`, `xoxb-`, `sk_live_`, …), is a JSON Web Token, or holds a long
/// random-looking stretch. Runs are cut into segments at `/ . - _ + =`, and a segment that reads like a word
/// (`orders`, `production`, `ClusterPolicy`) ends a stretch: identifiers such as
/// `payments/orders-api-ci-production-eu-west-1b` or `kustomize.config.k8s.io/v1beta1` pass, base64 and tokens do not.
/// UUIDs, and digests after `sha256:` (or `sha256=`), are identifiers; any other run of 32 or more hexadecimal digits,
/// a bare git commit hash included, counts as a secret.
///
/// ```swift
/// SecretScanner.finding(in: "ghp_" + String(repeating: "a1B2", count: 9))  // "a GitHub token (ghp_…, 40 characters)"
/// SecretScanner.match(in: "Q2hhbmdlTWUhX3k4ZlR3cUpOMnZM0x9aK")?.excerpt    // "Q2hh…"
/// SecretScanner.finding(in: "payments/orders-api-ci")                      // nil
/// ```
package enum SecretScanner {
    /// What a flagged value looks like, with a masked excerpt that is safe to print.
    package struct Finding: Sendable, Hashable, CustomStringConvertible {
        /// What the flagged word looks like, e.g. "a GitHub token", "a long random string", "a PEM private key".
        package let kind: String
        /// The flagged word masked: its known prefix or its first 4 characters, then "…" (`ghp_…`, `Q2hh…`); for a PEM
        /// block, its label (`BEGIN RSA PRIVATE KEY`). Never the whole word, and never itself flagged by the scanner.
        package let excerpt: String
        /// The length of the flagged word in characters (it is ASCII), or nil for a PEM block.
        package let length: Int?

        /// The kind of a bare run of hexadecimal digits, which in free text is as often a commit or build id as a secret.
        package static let hexadecimalKind = "a long hexadecimal string"

        /// Whether only its shape (a bare hexadecimal run) makes it look like a secret.
        package var isBareHexadecimal: Bool { kind == Self.hexadecimalKind }

        /// `kind (excerpt, N characters)`, e.g. "a GitHub token (ghp_…, 40 characters)": what `finding(in:)` returns.
        package var description: String {
            if let length { return "\(kind) (\(excerpt), \(length) characters)" }
            return "\(kind) (\(excerpt))"
        }
    }

    /// A credential prefix, and what must follow it: `minimumRest` to `maximumRest` characters of `alphabet`.
    struct KnownPrefix: Sendable {
        enum Alphabet: Sendable {
            case alphanumeric, upperAlphanumeric, token
        }

        let prefix: [UInt8]
        let minimumRest: Int
        let maximumRest: Int
        let alphabet: Alphabet
        let name: String

        init(_ prefix: String, _ minimumRest: Int, _ name: String, _ alphabet: Alphabet = .token, maximumRest: Int = Int.max) {
            self.prefix = Array(prefix.utf8)
            self.minimumRest = minimumRest
            self.maximumRest = maximumRest
            self.alphabet = alphabet
            self.name = name
        }

        func allows(_ byte: UInt8) -> Bool {
            switch alphabet {
            case .alphanumeric: return SecretScanner.isAlphanumeric(byte)
            case .upperAlphanumeric: return (byte >= 65 && byte <= 90) || (byte >= 48 && byte <= 57)
            case .token: return SecretScanner.isTokenByte(byte)
            }
        }
    }

    /// Known credential prefixes. Letters-and-digits tokens must be followed by letters and digits, so that names such
    /// as `npm_config_cache_directory_for_builds` are not mistaken for tokens; an AWS key id is exactly 16 characters.
    static let prefixes: [KnownPrefix] = [
        KnownPrefix("ghp_", 20, "a GitHub token", .alphanumeric), KnownPrefix("gho_", 20, "a GitHub OAuth token", .alphanumeric),
        KnownPrefix("ghu_", 20, "a GitHub user token", .alphanumeric), KnownPrefix("ghs_", 20, "a GitHub app token", .alphanumeric),
        KnownPrefix("ghr_", 20, "a GitHub refresh token", .alphanumeric), KnownPrefix("github_pat_", 20, "a GitHub fine-grained token"),
        KnownPrefix("glpat-", 16, "a GitLab token"), KnownPrefix("gldt-", 16, "a GitLab deploy token"),
        KnownPrefix("glrt-", 16, "a GitLab runner token"),
        KnownPrefix("xoxb-", 10, "a Slack bot token"), KnownPrefix("xoxp-", 10, "a Slack user token"), KnownPrefix("xoxa-", 10, "a Slack token"),
        KnownPrefix("xoxe-", 10, "a Slack token"), KnownPrefix("xoxs-", 10, "a Slack token"), KnownPrefix("xapp-", 10, "a Slack app token"),
        KnownPrefix("AKIA", 16, "an AWS access key id", .upperAlphanumeric, maximumRest: 16),
        KnownPrefix("ASIA", 16, "an AWS temporary access key id", .upperAlphanumeric, maximumRest: 16),
        KnownPrefix("sk_live_", 16, "a Stripe secret key", .alphanumeric), KnownPrefix("rk_live_", 16, "a Stripe restricted key", .alphanumeric),
        KnownPrefix("sk_test_", 16, "a Stripe test key", .alphanumeric), KnownPrefix("sk-proj-", 20, "an OpenAI key"),
        KnownPrefix("AIza", 30, "a Google API key"), KnownPrefix("npm_", 30, "an npm token", .alphanumeric), KnownPrefix("pypi-", 30, "a PyPI token"),
        KnownPrefix("tkc_", 20, "a tokenctl token", .alphanumeric), KnownPrefix("dop_v1_", 30, "a DigitalOcean token"),
        KnownPrefix("hvs.", 20, "a Vault token"),
    ]

    /// The shortest stretch checked for randomness.
    static let entropyMinimumLength = 24
    /// Bits per character (letters and digits) above which a long random-looking stretch counts as random.
    static let entropyThreshold = 3.5
    /// The fewest hexadecimal digits, and bits per digit, that make a hexadecimal string a secret.
    static let hexMinimumLength = 32
    static let hexEntropyThreshold = 3.1
    /// The share of character pairs inside segments that change class the way random text does (`characterBreaks`)
    /// that a random stretch reaches: about half of them in base64, 0.4 in lowercase letters and digits, none in
    /// `ip-10-42-17-203`.
    static let breakRatio = 0.15

    /// What the value looks like, e.g. "a GitHub token (ghp_…, 40 characters)", or nil when it looks harmless.
    package static func finding(in value: String) -> String? {
        match(in: value)?.description
    }

    /// What the value looks like, with a masked excerpt of what matched, or nil when it looks harmless.
    package static func match(in value: String) -> Finding? {
        // Short values cannot hold any credential the scanner knows.
        guard value.utf8.count >= 14 else { return nil }
        var value = value
        return value.withUTF8 { bytes in scan(bytes) }
    }

    /// What the UTF-8 text looks like, as `match(in:)` for a string.
    static func match(in bytes: UnsafeBufferPointer<UInt8>) -> Finding? {
        bytes.count >= 14 ? scan(bytes) : nil
    }

    /// What the UTF-8 text looks like, as `finding(in:)` for a string.
    static func finding(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        match(in: bytes)?.description
    }

    /// `line` with every word that looks like a secret replaced by `(sensitive)`, for echoing source lines.
    package static func redact(_ line: String) -> String {
        var line = line
        return line.withUTF8 { bytes in
            if pemMarker(in: bytes) != nil { return "(sensitive)" }
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
                // The whole line is passed along for context: a digest after `sha256:` is an identifier.
                if end - start >= 14, scanRuns(bytes, start..<end) != nil {
                    output.append(contentsOf: Array("(sensitive)".utf8))
                } else {
                    output.append(contentsOf: bytes[start..<end])
                }
                start = end
            }
            return String(decoding: output, as: UTF8.self)
        }
    }

    /// Why a source line must not be echoed, or nil when it may be: any word the scanner flags, a URL that carries a
    /// password (`scheme://user:password@host`), or a credential-named variable given a value (`DB_PASSWORD=…`).
    package static func lineFinding(_ line: String) -> String? {
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

    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Finding? {
        if let marker = pemMarker(in: bytes) { return pemFinding(bytes, marker: marker) }
        return scanRuns(bytes, 0..<bytes.count)
    }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == 32 || byte == 9 || byte == 10 || byte == 13 || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"")
            || byte == UInt8(ascii: "'")
    }

    /// The first finding among the runs of token characters in `bytes[range]`; the rest of `bytes` is context.
    private static func scanRuns(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Finding? {
        var start = range.lowerBound
        while start < range.upperBound {
            while start < range.upperBound, !isTokenByte(bytes[start]) { start += 1 }
            var end = start
            while end < range.upperBound, isTokenByte(bytes[end]) { end += 1 }
            if end - start >= 14, let finding = scanRun(bytes, start..<end) { return finding }
            start = end
        }
        return nil
    }

    /// One run of token characters: a known prefix, a JSON Web Token, or a random stretch.
    private static func scanRun(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Finding? {
        var start = range.lowerBound
        var digest = isAfterDigestLabel(bytes, start)
        // A `key=value` run: judge the value (`==` is base64 padding, not a setting). `sha256=<hex>` is a digest.
        if let equals = firstIndex(of: UInt8(ascii: "="), in: bytes, start..<range.upperBound), equals > start,
           equals + 1 < range.upperBound, bytes[equals + 1] != UInt8(ascii: "=") {
            digest = digest || isDigestName(bytes, start..<equals)
            start = equals + 1
        }
        let run = start..<range.upperBound
        guard run.count >= 14 else { return nil }
        // Known prefixes, at the start of the run or of a path segment (`//ghp_…@github.com`, `/tmp/glpat-…`).
        var position = start
        while position < run.upperBound {
            if let finding = knownPrefix(bytes, at: position, end: run.upperBound) { return finding }
            guard let slash = firstIndex(of: UInt8(ascii: "/"), in: bytes, position..<run.upperBound) else { break }
            position = slash + 1
        }
        if let finding = jsonWebToken(bytes, run) { return finding }
        guard run.count >= entropyMinimumLength else { return nil }
        return randomStretch(bytes, run, digest: digest)
    }

    private static func knownPrefix(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Finding? {
        guard start < end else { return nil }
        let first = bytes[start]
        for known in prefixes where known.prefix[0] == first && end - start >= known.prefix.count + known.minimumRest {
            guard bytes[start..<start + known.prefix.count].elementsEqual(known.prefix) else { continue }
            var restEnd = start + known.prefix.count
            while restEnd < end, known.allows(bytes[restEnd]) { restEnd += 1 }
            let rest = restEnd - start - known.prefix.count
            guard rest >= known.minimumRest, rest <= known.maximumRest else { continue }
            // A fixed-length id (AWS) is not the start of a longer word.
            if known.maximumRest != Int.max, restEnd < end, isAlphanumeric(bytes[restEnd]) { continue }
            let shown = String(decoding: known.prefix, as: UTF8.self) + "…"
            return Finding(kind: known.name, excerpt: shown, length: restEnd - start)
        }
        return nil
    }

    /// `eyJ…` and two more base64url parts, separated by dots: a JSON Web Token (its header is JSON, `{"…`).
    private static func jsonWebToken(_ bytes: UnsafeBufferPointer<UInt8>, _ run: Range<Int>) -> Finding? {
        guard run.count >= 30, bytes[run.lowerBound] == UInt8(ascii: "e"), bytes[run.lowerBound + 1] == UInt8(ascii: "y"),
              bytes[run.lowerBound + 2] == UInt8(ascii: "J") else { return nil }
        var firstDot: Int?
        var secondDot: Int?
        var index = run.lowerBound
        while index < run.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                if firstDot == nil {
                    firstDot = index
                } else if secondDot == nil {
                    secondDot = index
                } else {
                    return nil
                }
            } else if !isAlphanumeric(byte), byte != UInt8(ascii: "-"), byte != UInt8(ascii: "_") {
                return nil
            }
            index += 1
        }
        guard let firstDot, let secondDot, firstDot - run.lowerBound >= 10, secondDot - firstDot > 10 else { return nil }
        return Finding(kind: "a JSON Web Token", excerpt: masked(bytes, run), length: run.count)
    }

    /// The first random stretch in a run, UUIDs set aside.
    private static func randomStretch(_ bytes: UnsafeBufferPointer<UInt8>, _ run: Range<Int>, digest: Bool) -> Finding? {
        // Generated names such as `tokenctl-e2e-<UUID>` are identifiers: a UUID becomes a separator, so that what is
        // around it is judged alone. Most runs hold none, and are judged where they are.
        func startsUUID(_ index: Int) -> Bool {
            index + 36 <= run.upperBound && bytes[index + 8] == UInt8(ascii: "-") && bytes[index + 13] == UInt8(ascii: "-")
                && isUUID(bytes, at: index)
        }
        var first = run.lowerBound
        while first < run.upperBound, !startsUUID(first) { first += 1 }
        if first == run.upperBound { return stretches(in: UnsafeBufferPointer(rebasing: bytes[run]), digest: digest) }
        var text: [UInt8] = Array(bytes[run.lowerBound..<first])
        text.reserveCapacity(run.count)
        var index = first
        while index < run.upperBound {
            if startsUUID(index) {
                text.append(UInt8(ascii: "/"))
                index += 36
            } else {
                text.append(bytes[index])
                index += 1
            }
        }
        return text.withUnsafeBufferPointer { stretches(in: $0, digest: digest) }
    }

    /// Segments at `/ . - _ + =`; consecutive segments that do not read like words make a stretch, judged as a whole.
    private static func stretches(in text: UnsafeBufferPointer<UInt8>, digest: Bool) -> Finding? {
        var stretchStart = 0
        var breaks = 0
        var pairs = 0
        // The stretch from its first to its last segment of 4 or more characters: what a finding shows and measures.
        var shown: Range<Int>?
        var segmentStart = 0
        var index = 0
        while index <= text.count {
            if index < text.count, !isSegmentSeparator(text[index]) {
                index += 1
                continue
            }
            let segment = segmentStart..<index
            if segment.count >= 2 {
                let segmentBreaks = characterBreaks(text, segment)
                if isWord(text, segment, breaks: segmentBreaks) {
                    // A word: it ends the stretch before it.
                    let stretch = Stretch(range: stretchStart..<max(stretchStart, segmentStart - 1), shown: shown, breaks: breaks, pairs: pairs)
                    if let finding = judge(text, stretch, digest: digest) { return finding }
                    stretchStart = index + 1
                    breaks = 0
                    pairs = 0
                    shown = nil
                } else {
                    breaks += segmentBreaks
                    pairs += segment.count - 1
                    if segment.count >= 4 { shown = (shown?.lowerBound ?? segment.lowerBound)..<segment.upperBound }
                }
            }
            segmentStart = index + 1
            index += 1
        }
        return judge(text, Stretch(range: min(stretchStart, text.count)..<text.count, shown: shown, breaks: breaks, pairs: pairs), digest: digest)
    }

    /// Consecutive segments that do not read like words, and their class changes (`characterBreaks`) out of `pairs`.
    private struct Stretch {
        let range: Range<Int>
        let shown: Range<Int>?
        let breaks: Int
        let pairs: Int
    }

    /// Whether a stretch is random: long, high entropy, and as many class changes as random text; hexadecimal digits
    /// count when there are 32 or more of them, outside a digest.
    private static func judge(_ text: UnsafeBufferPointer<UInt8>, _ stretch: Stretch, digest: Bool) -> Finding? {
        let lower = stretch.range.lowerBound
        let upper = stretch.range.upperBound
        guard upper - lower >= entropyMinimumLength else { return nil }
        var hasUpper = false, hasLower = false, hasDigit = false, allHex = true
        var total = 0
        let entropy = withUnsafeTemporaryAllocation(of: Int.self, capacity: 128) { counts -> Double in
            counts.initialize(repeating: 0)
            var index = lower
            while index < upper {
                let byte = text[index]
                index += 1
                guard isAlphanumeric(byte) else { continue }
                counts[Int(byte)] += 1
                total += 1
                if byte >= 65 && byte <= 90 {
                    hasUpper = true
                    if byte > 70 { allHex = false }
                } else if byte >= 97 && byte <= 122 {
                    hasLower = true
                    if byte > 102 { allHex = false }
                } else {
                    hasDigit = true
                }
            }
            return shannonEntropy(counts: counts, total: total)
        }
        let shown = stretch.shown ?? lower..<upper
        if allHex {
            guard !digest, hasDigit, hasUpper || hasLower, total >= hexMinimumLength, entropy >= hexEntropyThreshold else { return nil }
            return Finding(kind: Finding.hexadecimalKind, excerpt: masked(text, shown), length: shown.count)
        }
        let classes = (hasUpper ? 1 : 0) + (hasLower ? 1 : 0) + (hasDigit ? 1 : 0)
        guard classes >= 2, entropy >= entropyThreshold, Double(stretch.breaks) >= breakRatio * Double(stretch.pairs) else { return nil }
        return Finding(kind: "a long random string", excerpt: masked(text, shown), length: shown.count)
    }

    /// Whether a segment reads like a word: 5 or more letters, a quarter of them vowels, in lower case, in capitals, or
    /// capitalised words run together (`orders`, `ORDERS`, `AmazonEKSClusterPolicy`), with at most one class change per
    /// 10 letters; a number may end it (`Policy2`, `OrdersApiEuWest1b`). Shorter segments, and segments with digits
    /// elsewhere (`west`, `v1beta1`, `7d9f8b6c5`), belong to the stretch around them.
    private static func isWord(_ text: UnsafeBufferPointer<UInt8>, _ segment: Range<Int>, breaks: Int) -> Bool {
        // A number of up to 4 digits at the end (`Policy2`), and one lowercase letter after it (`West1b`), is set aside.
        var end = segment.upperBound
        if end - segment.lowerBound >= 2, characterClass(text[end - 1]) == .lower, characterClass(text[end - 2]) == .digit { end -= 1 }
        var digits = 0
        while end > segment.lowerBound, characterClass(text[end - 1]) == .digit {
            end -= 1
            digits += 1
        }
        guard digits <= 4 else { return false }
        if digits == 0 { end = segment.upperBound }
        let letters = segment.lowerBound..<end
        let letterBreaks = letters == segment ? breaks : characterBreaks(text, letters)
        guard letters.count >= 5, letterBreaks * 10 < letters.count else { return false }
        // Words have vowels (`orders`: 2 of 6); random letters seldom have a quarter of them (`Dxrf`).
        var vowels = 0
        var index = letters.lowerBound
        while index < letters.upperBound {
            let byte = text[index]
            guard (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) else { return false }
            let lower = byte | 0x20
            if lower == 97 || lower == 101 || lower == 105 || lower == 111 || lower == 117 || lower == 121 { vowels += 1 }
            index += 1
        }
        return vowels * 4 >= letters.count
    }

    private enum CharacterClass {
        case upper, lower, digit, other
    }

    private static func characterClass(_ byte: UInt8) -> CharacterClass {
        if byte >= 65 && byte <= 90 { return .upper }
        if byte >= 97 && byte <= 122 { return .lower }
        if byte >= 48 && byte <= 57 { return .digit }
        return .other
    }

    /// How often the character class changes inside a segment the way it does in random text: between letters and
    /// digits; from lower to upper case unless a word of lowercase letters follows (`ordersApi`, `orgId`); from upper to
    /// lower case after two capitals (`XUtn`, but not `Orders`).
    private static func characterBreaks(_ text: UnsafeBufferPointer<UInt8>, _ segment: Range<Int>) -> Int {
        var breaks = 0
        var index = segment.lowerBound + 1
        while index < segment.upperBound {
            switch (characterClass(text[index - 1]), characterClass(text[index])) {
            case (.digit, .upper), (.digit, .lower), (.upper, .digit), (.lower, .digit):
                breaks += 1
            case (.lower, .upper):
                let word = index + 1 < segment.upperBound && characterClass(text[index + 1]) == .lower
                    && (index + 2 == segment.upperBound || characterClass(text[index + 2]) == .lower)
                if !word { breaks += 1 }
            case (.upper, .lower):
                if index - 2 >= segment.lowerBound, characterClass(text[index - 2]) == .upper { breaks += 1 }
            default:
                break
            }
            index += 1
        }
        return breaks
    }

    /// The first 4 characters of a flagged word and "…".
    private static func masked(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: bytes[range.lowerBound..<min(range.upperBound, range.lowerBound + 4)], as: UTF8.self) + "…"
    }

    /// Where `byte` first occurs in `bytes[range]`: a plain loop, which debug builds run as fast as the rest.
    private static func firstIndex(of byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        var index = range.lowerBound
        while index < range.upperBound {
            if bytes[index] == byte { return index }
            index += 1
        }
        return nil
    }

    private static func isSegmentSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "=")
    }

    /// Names of digests, whose hexadecimal values are identifiers (`@sha256:<hex>`).
    private static let digestNames: [[UInt8]] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"].map { Array($0.utf8) }

    /// Whether `bytes[range]` is a digest name, in either case.
    private static func isDigestName(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        digestNames.contains { name in
            name.count == range.count && zip(name, bytes[range]).allSatisfy { $0 == ($1 | 0x20) }
        }
    }

    /// Whether the text before `index` ends with a digest name and a colon (`sha256:`).
    private static func isAfterDigestLabel(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        guard index > 0, bytes[index - 1] == UInt8(ascii: ":") else { return false }
        var start = index - 1
        while start > 0, index - start <= 7, isAlphanumeric(bytes[start - 1]) { start -= 1 }
        return isDigestName(bytes, start..<index - 1)
    }

    /// `8-4-4-4-12` hexadecimal from `start`: an identifier, not a secret.
    private static func isUUID(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        guard start >= 0, start + 36 <= bytes.count else { return false }
        var offset = 0
        while offset < 36 {
            let byte = bytes[start + offset]
            if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                let isHex = (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 70) || (byte >= 97 && byte <= 102)
                guard isHex else { return false }
            }
            offset += 1
        }
        return true
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func shannonEntropy(counts: UnsafeMutableBufferPointer<Int>, total: Int) -> Double {
        guard total > 0 else { return 0 }
        let size = Double(total)
        var entropy = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / size
            entropy -= p * log2(p)
        }
        return entropy
    }

    /// A PEM block: a private key, or another block (a certificate's body is random enough to be flagged anyway).
    private static func pemFinding(_ bytes: UnsafeBufferPointer<UInt8>, marker: Int) -> Finding {
        // The label after `-----BEGIN `, e.g. `RSA PRIVATE KEY`: capitals and spaces only, at most 40 of them.
        var end = marker + 10
        while end < bytes.count, end - marker < 50, (bytes[end] >= 65 && bytes[end] <= 90) || bytes[end] == 32 { end += 1 }
        let label = String(decoding: bytes[marker + 5..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let kind = label.hasSuffix("PRIVATE KEY") ? "a PEM private key" : "a PEM block"
        return Finding(kind: kind, excerpt: label.isEmpty ? "BEGIN" : label, length: nil)
    }

    /// Where `bytes` holds `-----BEGIN`, if it does; a static string, so that scanning every value allocates nothing.
    private static func pemMarker(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let marker: StaticString = "-----BEGIN"
        guard let base = bytes.baseAddress, bytes.count >= marker.utf8CodeUnitCount else { return nil }
        let length = marker.utf8CodeUnitCount
        var index = 0
        while index + length <= bytes.count {
            if bytes[index] == UInt8(ascii: "-"), memcmp(base + index, marker.utf8Start, length) == 0 { return index }
            index += 1
        }
        return nil
    }
}
