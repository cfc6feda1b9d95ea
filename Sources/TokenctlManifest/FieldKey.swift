/// A mapping key as read, matched against field names byte by byte instead of becoming a `String` first.
///
/// ```swift
/// switch key {
/// case "issuer": issuer = try string("issuer")
/// default: return false
/// }
/// ```
struct FieldKey {
    /// The key's UTF-8 text; valid while its document is decoded.
    let text: UnsafeBufferPointer<UInt8>

    /// The key as a `String`, for messages and maps keyed by it.
    var name: String { String(decoding: text, as: UTF8.self) }

    static func ~= (field: StaticString, key: FieldKey) -> Bool {
        key.text.hasSameBytes(as: UnsafeBufferPointer(start: field.utf8Start, count: field.utf8CodeUnitCount))
    }
}
