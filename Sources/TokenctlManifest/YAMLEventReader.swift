import CYaml

/// One libyaml event with its 1-based position.
///
/// A plain value with no reference counting: the text of a scalar (or an alias's anchor name) is copied into
/// the reader's `TextArena`, where it stays until the next document starts. Copying an event, which happens
/// for every value, is then a copy of a few words, and text becomes a `String` only where a decoder keeps it.
struct YAMLEvent {
    enum Kind: UInt8 {
        case streamStart, streamEnd, documentStart, documentEnd
        case scalar, alias, sequenceStart, sequenceEnd, mappingStart, mappingEnd
    }

    var kind: Kind
    /// Whether the scalar was written without quotes (so `~`, `null` and an empty value mean "not set").
    var isPlain = false
    /// Whether this node defines an anchor (its name is `YAMLEventReader.lastAnchor`).
    var hasAnchor = false
    var line: Int32
    var column: Int32
    /// The scalar's text, or the alias's anchor name; valid until the reader starts the next document.
    var text = UnsafeBufferPointer<UInt8>(start: nil, count: 0)

    init(kind: Kind, line: Int32, column: Int32) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    /// The text as a `String`.
    var value: String { String(decoding: text, as: UTF8.self) }

    var isNullScalar: Bool {
        guard kind == .scalar && isPlain else { return false }
        switch text.count {
        case 0: return true
        case 1: return text[0] == UInt8(ascii: "~")
        case 4:
            // null, Null, NULL
            let (n, u, l, l2) = (text[0], text[1], text[2], text[3])
            return (n == UInt8(ascii: "n") && u == UInt8(ascii: "u") && l == UInt8(ascii: "l") && l2 == UInt8(ascii: "l"))
                || (n == UInt8(ascii: "N") && ((u == UInt8(ascii: "u") && l == UInt8(ascii: "l") && l2 == UInt8(ascii: "l"))
                    || (u == UInt8(ascii: "U") && l == UInt8(ascii: "L") && l2 == UInt8(ascii: "L"))))
        default: return false
        }
    }

    var kindDescription: String {
        switch kind {
        case .scalar: isNullScalar ? "an empty value" : "a scalar"
        case .sequenceStart: "a list"
        case .mappingStart: "a mapping"
        case .alias: "an alias"
        default: "the end of the document"
        }
    }
}

/// Limits that keep hostile input bounded in time and memory.
package struct DecodingLimits: Sendable {
    /// The largest manifest file read, in bytes.
    package var maxFileBytes = 256 << 20
    /// The most bytes libyaml may read without producing an event (bounds one scalar or comment block).
    package var maxPendingBytes = 1 << 20
    /// The deepest nesting of mappings and lists.
    package var maxDepth = 64
    /// The most events aliases may replay in one document.
    package var maxAliasEvents = 100_000

    /// The default limits.
    package init() {}
}

/// A fatal problem that stops reading a file (syntax error or a limit hit).
struct FatalDecodingError: Error {
    var line: Int
    var column: Int
    var code: String
    var message: String
}

/// Pulls events from libyaml over an in-memory buffer, refusing input that would make one event unbounded.
final class YAMLEventReader {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let event: UnsafeMutablePointer<yaml_event_t>
    private let input: UnsafeBufferPointer<UInt8>
    private var delivered = 0
    private var deliveredAtLastEvent = 0
    private let maxPendingBytes: Int
    /// Lines before `input` in its file, when `input` is one chunk of a larger file.
    private let lineOffset: Int
    fileprivate var exceededPendingLimit = false
    private var finished = false
    /// Holds the texts of the current document's events until the next document starts (events of a
    /// document, and the nodes its aliases replay, are used only while it is decoded).
    private var texts = TextArena()

    /// `input` must stay valid for the reader's lifetime.
    init(input: UnsafeBufferPointer<UInt8>, maxPendingBytes: Int, lineOffset: Int = 0) {
        self.input = input
        self.lineOffset = lineOffset
        self.maxPendingBytes = maxPendingBytes
        parser = .allocate(capacity: 1)
        event = .allocate(capacity: 1)
        yaml_parser_initialize(parser)
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input(parser, yamlReadHandler, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
        event.deallocate()
    }

    fileprivate func fill(_ buffer: UnsafeMutablePointer<UInt8>, size: Int) -> Int? {
        if delivered - deliveredAtLastEvent > maxPendingBytes {
            exceededPendingLimit = true
            return nil
        }
        let count = min(size, input.count - delivered)
        if count > 0, let base = input.baseAddress {
            buffer.update(from: base + delivered, count: count)
        }
        delivered += count
        return count
    }

    /// The next event; throws on a syntax error or when a limit is hit.
    func next() throws(FatalDecodingError) -> YAMLEvent {
        if finished { return YAMLEvent(kind: .streamEnd, line: 0, column: 0) }
        guard yaml_parser_parse(parser, event) == 1 else { throw parserError() }
        defer { yaml_event_delete(event) }
        deliveredAtLastEvent = delivered
        let raw = event.pointee
        var result = YAMLEvent(
            kind: .streamEnd,
            line: Int32(truncatingIfNeeded: raw.start_mark.line + 1 + lineOffset),
            column: Int32(truncatingIfNeeded: raw.start_mark.column + 1)
        )
        switch raw.type {
        case YAML_SCALAR_EVENT:
            let scalar = raw.data.scalar
            if let tag = scalar.tag { throw tagError(tag, at: result) }
            result.kind = .scalar
            if let value = scalar.value { result.text = texts.copy(value, count: scalar.length) }
            result.isPlain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            if let anchor = scalar.anchor { setAnchor(anchor, on: &result) }
        case YAML_MAPPING_START_EVENT:
            if let tag = raw.data.mapping_start.tag { throw tagError(tag, at: result) }
            result.kind = .mappingStart
            if let anchor = raw.data.mapping_start.anchor { setAnchor(anchor, on: &result) }
        case YAML_SEQUENCE_START_EVENT:
            if let tag = raw.data.sequence_start.tag { throw tagError(tag, at: result) }
            result.kind = .sequenceStart
            if let anchor = raw.data.sequence_start.anchor { setAnchor(anchor, on: &result) }
        case YAML_MAPPING_END_EVENT: result.kind = .mappingEnd
        case YAML_SEQUENCE_END_EVENT: result.kind = .sequenceEnd
        case YAML_ALIAS_EVENT:
            result.kind = .alias
            if let anchor = raw.data.alias.anchor { result.text = texts.copy(anchor, count: strlen(anchor)) }
        case YAML_DOCUMENT_START_EVENT:
            texts.removeAll()
            result.kind = .documentStart
        case YAML_DOCUMENT_END_EVENT: result.kind = .documentEnd
        case YAML_STREAM_START_EVENT: result.kind = .streamStart
        default:
            result.kind = .streamEnd
            finished = true
        }
        return result
    }

    /// The anchor name of the last event that defined one.
    private(set) var lastAnchor = ""

    private func setAnchor(_ pointer: UnsafeMutablePointer<UInt8>, on event: inout YAMLEvent) {
        lastAnchor = Self.string(pointer)
        event.hasAnchor = true
    }

    /// Tags ask a YAML loader to build a typed object (`!!python/object`, `!!binary`, `!custom`); manifests are typed
    /// by the field a value fills, so a tag is refused rather than silently read as a string.
    private func tagError(_ tag: UnsafeMutablePointer<UInt8>, at event: YAMLEvent) -> FatalDecodingError {
        var name = Self.string(tag)
        if name.hasPrefix("tag:yaml.org,2002:") { name = "!!" + name.dropFirst("tag:yaml.org,2002:".count) }
        if name.count > 60 { name = name.prefix(60) + "…" }
        return FatalDecodingError(line: Int(event.line), column: Int(event.column), code: "yaml-tag",
                                  message: "YAML tag '\(name)' is not allowed in manifests; values are typed by the field they fill, "
                                    + "so remove the tag (quote the value if it must stay a string)")
    }

    private func parserError() -> FatalDecodingError {
        let raw = parser.pointee
        if exceededPendingLimit {
            return FatalDecodingError(
                line: Int(raw.mark.line) + 1 + lineOffset, column: Int(raw.mark.column) + 1, code: "value-too-large",
                message: "a single value or comment block is longer than \(maxPendingBytes >> 20) MiB; "
                    + "manifests hold references to large data, not the data itself")
        }
        let problem = raw.problem.map { String(cString: $0) } ?? "unknown problem"
        let mark = raw.problem_mark
        var message = "YAML syntax error: \(problem)"
        if let context = raw.context.map({ String(cString: $0) }) {
            message += " \(context) (at line \(raw.context_mark.line + 1 + lineOffset), column \(raw.context_mark.column + 1))"
        }
        if raw.error == YAML_READER_ERROR {
            message = "the file is not valid UTF-8 text (\(problem)); save it as UTF-8"
            // Reader errors carry a byte offset, not a mark: count lines up to it.
            let (line, column) = position(ofByte: raw.problem_offset)
            return FatalDecodingError(line: line + lineOffset, column: column, code: "encoding", message: message)
        }
        return FatalDecodingError(line: Int(mark.line) + 1 + lineOffset, column: Int(mark.column) + 1, code: "syntax", message: message)
    }

    private func position(ofByte offset: Int) -> (Int, Int) {
        var line = 1
        var lineStart = 0
        let end = min(offset, input.count)
        for index in 0..<end where input[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return (line, end - lineStart + 1)
    }

    private static func string(_ pointer: UnsafeMutablePointer<UInt8>) -> String {
        String(cString: pointer)
    }
}

private func yamlReadHandler(
    _ data: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ size: Int,
    _ sizeRead: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let data, let buffer, let sizeRead else { return 0 }
    let reader = Unmanaged<YAMLEventReader>.fromOpaque(data).takeUnretainedValue()
    guard let count = reader.fill(buffer, size: size) else { return 0 }
    sizeRead.pointee = count
    return 1
}
