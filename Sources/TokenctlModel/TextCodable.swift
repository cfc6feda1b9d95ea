/// A value that is written as text in manifests, state and JSON: it encodes as its `description`
/// and decodes through `init?(text:)`.
package protocol TextCodable: Codable, CustomStringConvertible {
    /// Reads the value from its text form; nil when the text is not valid.
    init?(text: String)
}

extension TextCodable {
    /// Encodes the value as its text.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Decodes the value from its text.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(text: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid \(Self.self) '\(text)'")
        }
        self = value
    }
}
