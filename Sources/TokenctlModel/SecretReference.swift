/// Where a secret value comes from: never the value itself.
///
/// ```swift
/// let key = try SecretReference(parsing: "env:TOKENCTL_MASTER_KEY")
/// key.description  // "env:TOKENCTL_MASTER_KEY"
/// ```
package enum SecretReference: Hashable, Sendable, CustomStringConvertible {
    /// An environment variable of the process running tokenctl.
    case environment(String)
    /// A file whose contents are the secret.
    case file(String)

    /// Why a reference could not be read.
    package enum ParseError: Error, Equatable, Sendable {
        /// Neither `env:` nor `file:` precedes the name.
        case missingScheme
        /// The environment variable name is not `[A-Za-z_][A-Za-z0-9_]*`.
        case badVariableName
        /// Nothing follows the scheme.
        case empty
    }

    /// Reads `env:NAME` or `file:PATH`.
    package init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("env:") {
            let name = text.dropFirst(4)
            guard !name.isEmpty else { throw .empty }
            guard Self.isVariableName(name) else { throw .badVariableName }
            self = .environment(String(name))
        } else if text.hasPrefix("file:") {
            let path = text.dropFirst(5)
            guard !path.isEmpty else { throw .empty }
            self = .file(String(path))
        } else {
            throw .missingScheme
        }
    }

    static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || first.isASCIILetter else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0.isASCIILetter || $0.isASCIIDigit }
    }

    package var description: String {
        switch self {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }
}

extension UInt8 {
    var isASCIILetter: Bool { (self >= 65 && self <= 90) || (self >= 97 && self <= 122) }
    var isASCIIDigit: Bool { self >= 48 && self <= 57 }
    var isASCIILowercaseOrDigit: Bool { (self >= 97 && self <= 122) || isASCIIDigit }
}
