import TokenctlDrivers
import TokenctlModel

/// A resource decoded from one document.
enum DecodedResource: Sendable {
    case token(Token)
    case issuer(Issuer)
    case store(Store)
    case policy(Policy)
    case notifier(Notifier)
}

/// The resources of one file, by kind.
struct DecodedResources: Sendable {
    var tokens: [Token] = []
    var issuers: [Issuer] = []
    var stores: [Store] = []
    var policies: [Policy] = []
    var notifiers: [Notifier] = []

    mutating func append(_ resource: consuming DecodedResource) {
        switch consume resource {
        case .token(let token): tokens.append(token)
        case .issuer(let issuer): issuers.append(issuer)
        case .store(let store): stores.append(store)
        case .policy(let policy): policies.append(policy)
        case .notifier(let notifier): notifiers.append(notifier)
        }
    }
}

/// A name a document declares, kept even when the rest of the document has errors,
/// so that references to it are not reported as dangling too.
struct DeclaredName: Sendable {
    var kind: String
    var namespace: String?
    var name: String
    var location: SourceLocation
    /// A hash of kind, namespace and name, computed by the decoding worker so that the name check does not hash strings.
    var fingerprint: Int

    init(kind: String, namespace: String?, name: String, location: SourceLocation) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.location = location
        var hasher = Hasher()
        hasher.combine(kind)
        hasher.combine(namespace)
        hasher.combine(name)
        fingerprint = hasher.finalize()
    }
}

/// A reference from a token that failed to decode to an Issuer or Store, checked once every file is read.
struct NameReference: Sendable {
    var kind: String
    var name: String
    var token: TokenID?
    var location: SourceLocation
}

/// What decoding one file produced.
struct FileDecodingResult: Sendable {
    var resources = DecodedResources()
    var declared: [DeclaredName] = []
    var references: [NameReference] = []
    var diagnostics: [Diagnostic] = []
    var documents = 0
}

/// Decodes the documents of one file straight from libyaml events into the model.
///
/// Type errors, unknown fields and the like are collected and the offending value skipped,
/// so one run reports every problem; syntax errors and exceeded limits end the file.
final class FileDecoder {
    let file: String
    private let fileID: UInt32
    private let stream: EventStream
    var result = FileDecodingResult()
    /// Keys seen by the mappings being read, innermost last; reused so that no mapping allocates.
    private var seenKeys: [YAMLEvent] = []
    /// The Issuer and Store references of the token being read. A token that decodes cleanly carries the same
    /// names and positions itself, so they are kept in `result.references` only for tokens that fail.
    var tokenReferences: [NameReference] = []
    /// The keys of the mapping that `mapping` finished last, so that a field written with a bad value
    /// is not also reported as missing.
    private(set) var lastMappingKeys: [YAMLEvent] = []
    /// The entries of the map `stringMap` is reading, reused from map to map.
    var mapEntries: [(key: String, value: String)] = []
    /// The labels and annotations read last, shared by documents that repeat them.
    var previousLabels: [String: String] = [:]
    var previousAnnotations: [String: String] = [:]
    /// The spec fields the document's metadata allows to look like secrets (annotation `tokenctl.io/allow-secret-like`).
    var allowedSecretLikeFields: Set<String> = []
    /// Whether a spec is being read: only spec fields can be allowed (metadata is read before its annotation is known).
    var decodingSpec = false

    /// The issuer and store types, which decode their own settings sections.
    let registry: DriverRegistry
    /// The fields of every object, for unknown-field hints.
    let fieldTable: [String: [String]]

    init(file: String, stream: EventStream, registry: DriverRegistry, fieldTable: [String: [String]]) {
        self.registry = registry
        self.fieldTable = fieldTable
        self.file = file
        self.fileID = SourceFileTable.id(for: file)
        self.stream = stream
    }

    // MARK: Reporting

    func location(_ event: YAMLEvent) -> SourceLocation {
        SourceLocation(fileID: fileID, line: Int(event.line), column: Int(event.column))
    }

    func error(_ code: String, _ message: String, at event: YAMLEvent) {
        result.diagnostics.append(Diagnostic(.error, code, Self.safe(message), at: location(event)))
    }

    func error(_ code: String, _ message: String, at location: SourceLocation) {
        result.diagnostics.append(Diagnostic(.error, code, Self.safe(message), at: location))
    }

    func warning(_ code: String, _ message: String, at location: SourceLocation) {
        result.diagnostics.append(Diagnostic(.warning, code, Self.safe(message), at: location))
    }

    /// A quoted piece of input, cut to 80 characters so that the rest of the message stays readable.
    static func excerpt(_ text: String) -> String { SettingsReader.excerpt(text) }

    /// The longest message kept whole; longer ones quote that much of the input and say how much more there was.
    static let maxMessageBytes = 600

    /// A message fit to print: messages quote the manifest (a key, a value), so a huge key is cut and anything that
    /// looks like a secret is masked, whatever the message.
    static func safe(_ message: String) -> String {
        var text = message
        if text.utf8.count > maxMessageBytes {
            // Cut at a character boundary.
            var end = text.startIndex
            var bytes = 0
            for index in text.indices {
                bytes += text[index].utf8.count
                if bytes > maxMessageBytes { break }
                end = text.index(after: index)
            }
            let rest = text.utf8.count - text[..<end].utf8.count
            text = text[..<end] + "… (\(rest) more bytes not shown)"
        }
        return SecretScanner.finding(in: text) == nil ? text : SecretScanner.redact(text)
    }

    // MARK: Documents

    func decodeAll() {
        do {
            var event = try stream.next()
            while event.kind != .streamEnd {
                if event.kind == .documentStart {
                    let first = try stream.next()
                    if first.kind != .documentEnd && !first.isNullScalar {
                        result.documents += 1
                        try decodeDocument(first)
                    } else if first.kind != .documentEnd {
                        _ = try stream.next()  // the empty document's end
                    }
                }
                event = try stream.next()
            }
        } catch {
            self.error(error.code, error.message, at: SourceLocation(file: file, line: error.line, column: error.column))
        }
    }

    private func decodeDocument(_ first: YAMLEvent) throws(FatalDecodingError) {
        // The keys of the previous document's last mapping point into text the reader freed when this document started.
        lastMappingKeys.removeAll(keepingCapacity: true)
        guard first.kind == .mappingStart else {
            error("not-a-mapping", "a manifest document must be a mapping with apiVersion, kind, metadata and spec, found \(first.kindDescription)",
                  at: first)
            try skip(first)
            _ = try stream.next()  // document end
            return
        }
        let documentLocation = location(first)
        tokenReferences.removeAll(keepingCapacity: true)
        allowedSecretLikeFields = []
        var acceptedToken = false
        defer { if !acceptedToken { result.references.append(contentsOf: tokenReferences) } }
        var apiVersion: Located<String>?
        var kind: Located<String>?
        var kindName: String?
        var metadata: DecodedMetadata?
        var metadataSeen = false
        var spec: DecodedResource?
        var specSeen = false
        var errorsBeforeSpec = 0
        var pending: [(key: String, value: [YAMLEvent])] = []

        func decodeMetadataNow(_ kindName: String) throws(FatalDecodingError) {
            metadataSeen = true
            metadata = try decodeMetadata(kind: kindName, first: try stream.next())
            // The spec is always decoded after the metadata, so its allowance is known when the spec is scanned.
            allowedSecretLikeFields = SecretAllowance.fields(in: metadata?.metadata.annotations ?? [:])
            if let metadata {
                result.declared.append(DeclaredName(kind: kindName, namespace: metadata.namespace, name: metadata.metadata.name,
                                                    location: metadata.metadata.location))
            }
        }
        func decodeSpecNow(_ kindName: String) throws(FatalDecodingError) {
            specSeen = true
            decodingSpec = true
            defer { decodingSpec = false }
            errorsBeforeSpec = result.diagnostics.count
            let specFirst = try stream.next()
            switch kindName {
            case "Token": spec = try decodeTokenSpec(specFirst, metadata: metadata)
            case "Issuer": spec = try decodeIssuerSpec(specFirst, metadata: metadata)
            case "Store": spec = try decodeStoreSpec(specFirst, metadata: metadata)
            case "Notifier": spec = try decodeNotifierSpec(specFirst, metadata: metadata)
            default: spec = try decodePolicySpec(specFirst, metadata: metadata)
            }
        }
        func resolveKind() {
            guard let kind, kindName == nil else { return }
            if ManifestFields.kinds.contains(kind.value) {
                kindName = kind.value
            } else {
                error("unknown-kind", "unknown kind '\(kind.value)'\(Suggestion.didYouMean(kind.value, among: ManifestFields.kinds)); "
                      + "use one of \(ManifestFields.kinds.joined(separator: ", "))", at: kind.location)
            }
        }

        try mapping(first, object: "document", display: "a manifest document") { key, _ throws(FatalDecodingError) in
            switch key {
            case "apiVersion": apiVersion = try self.string("apiVersion")
            case "kind":
                kind = try self.string("kind")
                resolveKind()
            case "metadata" where kindName != nil && pending.isEmpty:
                try decodeMetadataNow(kindName ?? "")
            case "spec" where kindName != nil && metadataSeen && pending.isEmpty:
                try decodeSpecNow(kindName ?? "")
            case "metadata", "spec":
                // Kind or metadata comes later in this document: keep the events until then.
                pending.append((key.name, try self.stream.capture(startingWith: try self.stream.next())))
            default: return false
            }
            return true
        }
        _ = try stream.next()  // document end

        if let apiVersion, apiVersion.value != ManifestFields.apiVersion {
            error("api-version", "unsupported apiVersion '\(apiVersion.value)'; use '\(ManifestFields.apiVersion)'", at: apiVersion.location)
        } else if apiVersion == nil {
            error("missing-field", "missing required field 'apiVersion' in manifest document; add 'apiVersion: \(ManifestFields.apiVersion)'",
                  at: documentLocation)
        }
        if kind == nil {
            error("missing-field", "missing required field 'kind' in manifest document; add one of \(ManifestFields.kinds.joined(separator: ", "))",
                  at: documentLocation)
        }
        guard let kindName else { return }
        for key in ["metadata", "spec"] {
            guard let events = pending.first(where: { $0.key == key })?.value else { continue }
            stream.pushBack(events)
            if key == "metadata" { try decodeMetadataNow(kindName) } else { try decodeSpecNow(kindName) }
        }
        if !metadataSeen {
            error("missing-field", "missing required field 'metadata' in \(kindName); add 'metadata: {name: …}'", at: documentLocation)
        }
        if !specSeen {
            error("missing-field", "missing required field 'spec' in \(kindName) '\(metadata?.metadata.name ?? "?")'; add its spec",
                  at: documentLocation)
        }
        let clean = !result.diagnostics[errorsBeforeSpec...].contains { $0.severity == .error }
        if metadata != nil, clean, let spec = spec.take() {
            if case .token = spec { acceptedToken = true }
            result.resources.append(spec)
        }
    }

    // MARK: Structure

    /// Reads a mapping whose first event is `first`, calling `body` with each key. `body` reads the
    /// value with one of the value readers and returns true, or returns false for an unknown key.
    /// A null value counts as an empty mapping; anything else is a type error. Returns whether it was a mapping.
    @discardableResult
    func mapping(
        _ first: YAMLEvent, object: @autoclosure () -> String, display: @autoclosure () -> String,
        body: (FieldKey, YAMLEvent) throws(FatalDecodingError) -> Bool
    ) throws(FatalDecodingError) -> Bool {
        guard first.kind == .mappingStart else {
            if !first.isNullScalar {
                error("wrong-type", "expected a mapping for \(display()), found \(first.kindDescription)", at: first)
                try skip(first)
            }
            return false
        }
        let seenBase = seenKeys.count
        defer { seenKeys.removeLast(seenKeys.count - seenBase) }
        // Past a few keys (labels, annotations), a set keeps duplicate detection linear.
        var manyKeys: [String: YAMLEvent]?
        while true {
            let keyEvent = try stream.next()
            if keyEvent.kind == .mappingEnd {
                lastMappingKeys.removeAll(keepingCapacity: true)
                if let many = manyKeys {
                    lastMappingKeys.append(contentsOf: many.values)
                } else {
                    lastMappingKeys.append(contentsOf: seenKeys[seenBase...])
                }
                return true
            }
            guard keyEvent.kind == .scalar else {
                error("wrong-type", "keys in \(display()) must be plain names, found \(keyEvent.kindDescription)", at: keyEvent)
                try skip(keyEvent)
                try skip(try stream.next())
                continue
            }
            let key = FieldKey(text: keyEvent.text)
            if scanForSecret(keyEvent) {
                try skip(try stream.next())
                continue
            }
            let previous: YAMLEvent?
            if let many = manyKeys {
                previous = many[key.name]
            } else {
                previous = seenKeys[seenBase...].first(where: { $0.text.hasSameBytes(as: keyEvent.text) })
            }
            if let previous {
                error("duplicate-key", "duplicate key '\(Self.excerpt(key.name))' in \(display()); it is already set at line \(previous.line), column \(previous.column); remove one",
                      at: keyEvent)
                try skip(try stream.next())
                continue
            }
            if manyKeys != nil {
                manyKeys?[key.name] = keyEvent
            } else {
                seenKeys.append(keyEvent)
                if seenKeys.count - seenBase > 16 {
                    manyKeys = Dictionary(seenKeys[seenBase...].map { ($0.value, $0) }, uniquingKeysWith: { first, _ in first })
                }
            }
            if try !body(key, keyEvent) {
                let fields = fieldTable[object()] ?? []
                let hint = key.name == "<<" ? " (merge keys are not supported; use an alias for the whole value or write the fields out)"
                    : Suggestion.didYouMean(key.name, among: fields)
                let known = fields.isEmpty ? "" : "; known fields: \(fields.joined(separator: ", "))"
                error("unknown-field", "unknown field '\(Self.excerpt(key.name))' in \(display())\(hint)\(known)", at: keyEvent)
                try skip(try stream.next())
            }
        }
    }

    /// Reads a list, calling `element` with each item's first event. Null counts as empty.
    @discardableResult
    func sequence(display: @autoclosure () -> String, element: (YAMLEvent) throws(FatalDecodingError) -> Void) throws(FatalDecodingError) -> YAMLEvent? {
        let first = try stream.next()
        guard first.kind == .sequenceStart else {
            if !first.isNullScalar {
                error("wrong-type", "expected a list for \(display()), found \(first.kindDescription)", at: first)
                try skip(first)
            }
            return nil
        }
        while true {
            let item = try stream.next()
            if item.kind == .sequenceEnd { return first }
            try element(item)
        }
    }

    /// Consumes the rest of a node, still checking its scalars for literal secrets.
    func skip(_ first: YAMLEvent) throws(FatalDecodingError) {
        if first.kind == .scalar { scanForSecret(first) }
        guard first.kind == .mappingStart || first.kind == .sequenceStart else { return }
        var level = 1
        while level > 0 {
            let event = try stream.next()
            switch event.kind {
            case .mappingStart, .sequenceStart: level += 1
            case .mappingEnd, .sequenceEnd: level -= 1
            case .scalar: scanForSecret(event)
            case .documentEnd, .streamEnd: return
            default: break
            }
        }
    }

    func next() throws(FatalDecodingError) -> YAMLEvent { try stream.next() }

    // MARK: Secrets

    /// Reports a scalar that looks like a secret; true when it is refused (the caller then drops it). A field the
    /// document's metadata allows is kept, with a warning that every apply also records in the audit log.
    @discardableResult
    func scanForSecret(_ event: YAMLEvent, field: @autoclosure () -> String? = nil) -> Bool {
        guard let match = SecretScanner.match(in: event.text) else { return false }
        let field = field()
        if decodingSpec, let field, allowedSecretLikeFields.contains(field) {
            warning(SecretAllowance.code, "'\(field)' looks like a secret (\(match.description)) but is allowed by the annotation "
                    + "\(SecretAllowance.annotation); every apply records the allowance in the audit log", at: location(event))
            return false
        }
        let subject = field.map { "'\($0)' looks like a secret" } ?? "this value looks like a secret"
        let allow = decodingSpec ? field.map { "; if it is not one, allow it with the annotation \(SecretAllowance.annotation): \($0)" } ?? "" : ""
        error("literal-secret", "\(subject): \(match.description); never write secrets in manifests: reference them as "
              + "env:NAME or file:PATH, and revoke the exposed secret\(allow)", at: event)
        return true
    }
}
