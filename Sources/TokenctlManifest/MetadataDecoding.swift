import TokenctlModel

/// Metadata of a document as decoded, before it is joined with the spec.
struct DecodedMetadata {
    var metadata: ResourceMetadata
    var namespace: String?
    var owner: Located<String>?
}

extension FileDecoder {
    /// Reads `metadata`; nil when it is missing essentials (the errors are recorded).
    func decodeMetadata(kind: String, first: YAMLEvent) throws(FatalDecodingError) -> DecodedMetadata? {
        let isToken = kind == "Token"
        func display() -> String { "\(kind) metadata" }
        var name: Located<String>?
        var namespace: Located<String>?
        var owner: Located<String>?
        var labels: [String: String] = [:]
        var annotations: [String: String] = [:]
        let isMapping = try mapping(first, object: "\(kind).metadata", display: display()) { key, _ throws(FatalDecodingError) in
            switch key {
            case "name": name = try string("name")
            case "namespace" where isToken: namespace = try string("namespace")
            case "owner" where isToken: owner = try string("owner")
            case "labels": labels = try stringMap("labels", checkingKeys: true, previous: &previousLabels) ?? [:]
            case "annotations": annotations = try stringMap("annotations", previous: &previousAnnotations) ?? [:]
            default: return false
            }
            return true
        }
        guard isMapping else {
            if first.isNullScalar { missing("metadata", in: kind, at: first, hint: "; add 'metadata: {name: …}'") }
            return nil
        }
        var valid = true
        if let name {
            valid = checkLabel(name, field: "name") && valid
        } else {
            missing("name", in: display(), at: first)
            valid = false
        }
        if let namespace { valid = checkLabel(namespace, field: "namespace") && valid }
        if isToken {
            if let owner {
                if owner.value.containsWhitespace {
                    error("bad-value", "invalid owner '\(owner.value)': an owner is a team or person id without spaces, such as team-payments",
                          at: owner.location)
                    valid = false
                }
            } else {
                missing("owner", in: display(), at: first, hint: "; every token needs an accountable owner, such as team-payments")
                valid = false
            }
        }
        guard valid, let name else { return nil }
        return DecodedMetadata(
            metadata: ResourceMetadata(name: name.value, labels: labels, annotations: annotations, location: name.location),
            namespace: isToken ? (namespace?.value ?? "default") : nil,
            owner: owner)
    }

    /// Whether `text` is a DNS label: lowercase letters, digits and '-', at most 63, alphanumeric at both ends.
    static func isDNSLabel(_ text: String) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 63, let first = bytes.first, let last = bytes.last else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool { (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) }
        return alphanumeric(first) && alphanumeric(last) && bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    static func isLabelKey(_ key: String) -> Bool {
        var slashes = 0
        var partLength = 0
        for byte in key.utf8 {
            if byte == UInt8(ascii: "/") {
                guard partLength > 0 else { return false }
                slashes += 1
                partLength = 0
                continue
            }
            let allowed = (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90) || (byte >= 48 && byte <= 57)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            guard allowed else { return false }
            partLength += 1
            if partLength > 253 { return false }
        }
        return slashes <= 1 && partLength > 0
    }

    func checkLabel(_ value: Located<String>, field: String) -> Bool {
        guard Self.isDNSLabel(value.value) else {
            error("bad-name", "invalid \(field) '\(value.value)': use lowercase letters, digits and '-', starting and ending "
                  + "with a letter or digit, at most 63 characters (like orders-api-ci)", at: value.location)
            return false
        }
        return true
    }
}
