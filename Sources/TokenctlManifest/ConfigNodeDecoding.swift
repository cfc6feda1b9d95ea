import TokenctlDrivers
import TokenctlModel

/// Issuer and store settings sections are read into `ConfigNode`s for their drivers to decode.
extension FileDecoder {
    /// The node whose first event is `first`. `field` names it for secret allowances as the rest of the format does
    /// (`postgres.url`, `tls.mode`: the mapping's key and the field), `display` for messages (`Issuer spec.postgres`).
    /// Duplicate keys and values that look like secrets are reported here, once.
    func configNode(_ first: YAMLEvent, field: String, display: String) throws(FatalDecodingError) -> ConfigNode {
        let at = location(first)
        switch first.kind {
        case .scalar:
            if first.isNullScalar { return .null(at) }
            if scanForSecret(first, field: field) { return .withheld(at) }
            return .scalar(first.value, at)
        case .mappingStart:
            var entries: [ConfigEntry] = []
            let parent = field.split(separator: ".").last.map(String.init) ?? field
            try mapping(first, object: "", display: display) { key, keyEvent throws(FatalDecodingError) in
                let name = key.name
                let value = try configNode(try next(), field: "\(parent).\(name)", display: "\(display).\(name)")
                entries.append(ConfigEntry(key: name, keyLocation: location(keyEvent), value: value))
                return true
            }
            return .mapping(entries, at)
        case .sequenceStart:
            var items: [ConfigNode] = []
            while true {
                let item = try next()
                if item.kind == .sequenceEnd { return .sequence(items, at) }
                items.append(try configNode(item, field: field, display: display))
            }
        default:
            error("wrong-type", "expected a value for '\(field)', found \(first.kindDescription)", at: first)
            try skip(first)
            return .withheld(at)
        }
    }

    /// Adds a driver's diagnostics, made safe to print like the decoder's own.
    func report(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics {
            var safe = diagnostic
            safe.message = Self.safe(diagnostic.message)
            result.diagnostics.append(safe)
        }
    }
}
