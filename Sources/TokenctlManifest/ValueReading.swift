import TokenctlDrivers
import TokenctlModel

/// Readers of scalar values, lists and string maps, each typed by the field it fills.
extension FileDecoder {
    /// Reads a scalar value as text (typed by the field, so `on` stays "on"); nil for null or a type error.
    func string(_ field: @autoclosure () -> String) throws(FatalDecodingError) -> Located<String>? {
        try string(field(), first: try next())
    }

    func string(_ field: @autoclosure () -> String, first: YAMLEvent) throws(FatalDecodingError) -> Located<String>? {
        guard first.kind == .scalar else {
            error("wrong-type", "expected a string for '\(field())', found \(first.kindDescription)", at: first)
            try skip(first)
            return nil
        }
        if first.isNullScalar { return nil }
        // A value flagged as a secret is reported once and never echoed by later messages.
        if scanForSecret(first, field: field()) { return nil }
        return Located(first.value, at: location(first))
    }

    /// Reads a list of strings; nil for null or a type error.
    func stringList(_ field: String) throws(FatalDecodingError) -> [Located<String>]? {
        var items: [Located<String>] = []
        let list = try sequence(display: "'\(field)'") { item throws(FatalDecodingError) in
            if item.isNullScalar {
                error("wrong-type", "items of '\(field)' must not be empty", at: item)
            } else if let value = try string(field, first: item) {
                items.append(value)
            }
        }
        return list == nil ? nil : items
    }

    /// Reads a string-to-string mapping such as labels or annotations.
    ///
    /// Documents of one file often carry the same labels: when the entries equal those of `previous`, the
    /// result shares its storage instead of holding a copy, and `previous` becomes the map read.
    func stringMap(_ field: String, checkingKeys: Bool = false, previous: inout [String: String]) throws(FatalDecodingError) -> [String: String]? {
        let first = try next()
        mapEntries.removeAll(keepingCapacity: true)
        let isMapping = try mapping(first, object: "", display: "'\(field)'") { key, keyEvent throws(FatalDecodingError) in
            let key = key.name
            if checkingKeys && !Self.isLabelKey(key) {
                error("bad-value", "invalid \(field) key '\(key)': use letters, digits, '-', '_', '.' and at most one '/' prefix",
                      at: keyEvent)
            }
            mapEntries.append((key, try string("\(field).\(key)")?.value ?? ""))
            return true
        }
        guard isMapping else { return nil }
        // `mapping` reports duplicate keys, so the entries are distinct and equal counts mean equal key sets.
        if previous.count == mapEntries.count && mapEntries.allSatisfy({ previous[$0.key] == $0.value }) { return previous }
        var values = [String: String](minimumCapacity: mapEntries.count)
        for (key, value) in mapEntries { values[key] = value }
        previous = values
        return values
    }

    /// Reads a duration such as `90d`; `allowNever` accepts `never` (returned as nil with `isNever`).
    func duration(_ field: String) throws(FatalDecodingError) -> Located<TokenDuration>? {
        guard let text = try string(field) else { return nil }
        do {
            let value = try TokenDuration(parsing: text.value)
            return Located(value, at: text.location)
        } catch {
            reportDuration(error, field: field, text: text)
            return nil
        }
    }

    func reportDuration(_ error: TokenDuration.ParseError, field: String, text: Located<String>) {
        self.error("bad-duration", "invalid duration '\(text.value)' for '\(field)': \(SettingsReader.describe(error)); "
                   + "write it like 30s, 15m, 12h, 90d or 2w", at: text.location)
    }

    /// Reads one of a fixed set of words.
    func choice(_ field: String, _ choices: [String]) throws(FatalDecodingError) -> Located<String>? {
        guard let text = try string(field) else { return nil }
        guard choices.contains(text.value) else {
            error("bad-value", "invalid value '\(text.value)' for '\(field)'\(Suggestion.didYouMean(text.value, among: choices)); "
                  + "use one of \(choices.joined(separator: ", "))", at: text.location)
            return nil
        }
        return text
    }

    /// Reads an `env:NAME` or `file:PATH` reference.
    func reference(_ field: String) throws(FatalDecodingError) -> Located<SecretReference>? {
        guard let text = try string(field) else { return nil }
        do {
            return Located(try SecretReference(parsing: text.value), at: text.location)
        } catch {
            self.error("bad-reference", SettingsReader.describe(error, text: text.value, field: field), at: text.location)
            return nil
        }
    }

    /// Reports a required field as missing, unless it was written (with a value already reported as wrong)
    /// in the mapping read last.
    func missing(_ field: String, in display: String, at event: YAMLEvent, hint: String = "") {
        var field = field
        if field.withUTF8({ name in lastMappingKeys.contains { $0.text.hasSameBytes(as: name) } }) { return }
        error("missing-field", "missing required field '\(field)' in \(display)\(hint)", at: event)
    }
}
