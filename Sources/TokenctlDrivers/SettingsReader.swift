import TokenctlModel

/// Reads a driver's settings section into typed values, collecting diagnostics in the manifest decoder's words.
///
/// ```swift
/// var reader = SettingsReader()
/// if let fields = reader.mapping(section, display: "Store spec.dotenv", fields: ["path"]) {
///     let path = fields["path"].flatMap { reader.string($0, field: "dotenv.path") }
/// }
/// ```
package struct SettingsReader: Sendable {
    /// What was reported, in order.
    package private(set) var diagnostics: [Diagnostic] = []

    /// Creates a reader with no diagnostics.
    package init() {}

    /// Reports an error.
    package mutating func error(_ code: String, _ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.error, code, message, at: location))
    }

    /// Reports a warning.
    package mutating func warning(_ code: String, _ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.warning, code, message, at: location))
    }

    /// The entries of a mapping by key, with unknown keys reported against `fields`; nil when the node is empty or not
    /// a mapping (reported).
    package mutating func mapping(_ node: ConfigNode, display: String, fields: [String]) -> [String: ConfigEntry]? {
        switch node {
        case .null: return nil
        case .mapping(let entries, _):
            var known: [String: ConfigEntry] = [:]
            for entry in entries {
                if fields.contains(entry.key) {
                    known[entry.key] = entry
                } else {
                    let known = fields.isEmpty ? "" : "; known fields: \(fields.joined(separator: ", "))"
                    let hint = entry.key == "<<" ? " (merge keys are not supported; use an alias for the whole value or write the fields out)"
                        : Suggestion.didYouMean(entry.key, among: fields)
                    error("unknown-field", "unknown field '\(Self.excerpt(entry.key))' in \(display)\(hint)\(known)", at: entry.keyLocation)
                }
            }
            return known
        case .withheld: return nil
        case .scalar, .sequence:
            error("wrong-type", "expected a mapping for \(display), found \(node.kindDescription)", at: node.location)
            return nil
        }
    }

    /// A quoted piece of input, cut to 80 characters so that the rest of the message stays readable.
    package static func excerpt(_ text: String) -> String {
        text.count <= 80 ? text : text.prefix(60) + "… (\(text.utf8.count) bytes)"
    }

    /// A scalar as text; nil for an empty value, a refused one or a type error (reported).
    package mutating func string(_ node: ConfigNode, field: String) -> Located<String>? {
        switch node {
        case .scalar(let text, let location): return Located(text, at: location)
        case .null, .withheld: return nil
        case .mapping, .sequence:
            error("wrong-type", "expected a string for '\(field)', found \(node.kindDescription)", at: node.location)
            return nil
        }
    }

    /// A list of non-empty strings; nil for an empty value or a type error (reported).
    package mutating func stringList(_ node: ConfigNode, field: String) -> [Located<String>]? {
        switch node {
        case .null, .withheld: return nil
        case .sequence(let items, _):
            var values: [Located<String>] = []
            for item in items {
                if case .null(let location) = item {
                    error("wrong-type", "items of '\(field)' must not be empty", at: location)
                } else if let value = string(item, field: field) {
                    values.append(value)
                }
            }
            return values
        case .scalar, .mapping:
            error("wrong-type", "expected a list for '\(field)', found \(node.kindDescription)", at: node.location)
            return nil
        }
    }

    /// One of a fixed set of words.
    package mutating func choice(_ node: ConfigNode, field: String, among choices: [String]) -> Located<String>? {
        guard let text = string(node, field: field) else { return nil }
        guard choices.contains(text.value) else {
            error("bad-value", "invalid value '\(text.value)' for '\(field)'\(Suggestion.didYouMean(text.value, among: choices)); "
                  + "use one of \(choices.joined(separator: ", "))", at: text.location)
            return nil
        }
        return text
    }

    /// A duration such as `30s` or `90d`.
    package mutating func duration(_ node: ConfigNode, field: String) -> Located<TokenDuration>? {
        guard let text = string(node, field: field) else { return nil }
        do {
            return Located(try TokenDuration(parsing: text.value), at: text.location)
        } catch {
            self.error("bad-duration", "invalid duration '\(text.value)' for '\(field)': \(Self.describe(error)); "
                  + "write it like 30s, 15m, 12h, 90d or 2w", at: text.location)
            return nil
        }
    }

    /// What is wrong with a duration, in the words of every duration message.
    package static func describe(_ error: TokenDuration.ParseError) -> String {
        switch error {
        case .unknownUnit(let unit): "unknown unit '\(unit)'"
        case .overflow: "it is too large"
        case .empty, .malformed: "it is not a number followed by a unit"
        }
    }

    /// An `env:NAME` or `file:PATH` reference.
    package mutating func reference(_ node: ConfigNode, field: String) -> Located<SecretReference>? {
        guard let text = string(node, field: field) else { return nil }
        do {
            return Located(try SecretReference(parsing: text.value), at: text.location)
        } catch {
            self.error("bad-reference", Self.describe(error, text: text.value, field: field), at: text.location)
            return nil
        }
    }

    /// The message for a bad `env:`/`file:` reference, in the words of every reference message. A value without a
    /// scheme may be a secret written in place, so it is never quoted.
    package static func describe(_ error: SecretReference.ParseError, text: String, field: String) -> String {
        let detail = switch error {
        case .missingScheme: "a secret is never written in a manifest; refer to it as env:NAME or file:PATH"
        case .badVariableName: "an environment variable name has only letters, digits and '_' and does not start with a digit"
        case .empty: "name the variable or file after the colon"
        }
        return "invalid reference '\(error == .missingScheme ? "…" : text)' for '\(field)': \(detail)"
    }

    /// Reports a required field as missing, unless it was written with a value already reported as wrong (an empty
    /// value counts as missing).
    package mutating func missing(_ field: String, in display: String, at location: SourceLocation, written: [String: ConfigEntry]? = nil,
                                  hint: String = "") {
        if let entry = written?[field], !entry.value.isNull { return }
        error("missing-field", "missing required field '\(field)' in \(display)\(hint)", at: location)
    }
}
