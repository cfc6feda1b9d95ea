import TokenctlModel

/// Checks that need the whole manifest set: unique names and references that resolve.
enum SetValidator {
    static func assemble(_ resources: [DecodedResource], declared: [DeclaredName], references: [NameReference],
                         into set: inout ManifestSet, diagnostics: inout [Diagnostic]) {
        // Names: the first declaration (by file and position) wins; later ones are errors.
        var firstDeclaration: [String: DeclaredName] = [:]
        var duplicateLocations = Set<SourceLocation>()
        var names: [String: Set<String>] = ["Issuer": [], "Store": []]
        for name in declared.sorted(by: { $0.location < $1.location }) {
            let key = "\(name.kind)\u{0}\(name.namespace ?? "")\u{0}\(name.name)"
            if let first = firstDeclaration[key] {
                let scope = name.namespace.map { " in namespace '\($0)'" } ?? ""
                diagnostics.append(Diagnostic(.error, "duplicate-name",
                    "\(name.kind) '\(name.name)'\(scope) is already defined at \(first.location); rename or remove one of them",
                    at: name.location))
                duplicateLocations.insert(name.location)
            } else {
                firstDeclaration[key] = name
            }
            names[name.kind]?.insert(name.name)
        }
        var dangling = Set<SourceLocation>()
        for reference in references {
            let defined = names[reference.kind] ?? []
            guard !defined.contains(reference.name) else { continue }
            let sorted = defined.sorted()
            let noun = reference.kind.lowercased()
            let verb = reference.kind == "Issuer" ? "names issuer" : "delivers to store"
            let available = sorted.isEmpty ? "add \(reference.kind == "Issuer" ? "an" : "a") \(reference.kind) document named '\(reference.name)'"
                : "defined \(noun)s: \(sorted.joined(separator: ", "))"
            diagnostics.append(Diagnostic(.error, "unknown-\(noun)",
                "token '\(reference.token?.description ?? "?")' \(verb) '\(reference.name)', which is not defined"
                + "\(Suggestion.didYouMean(reference.name, among: sorted)); \(available)",
                at: reference.location))
            dangling.insert(reference.location)
        }
        for resource in resources {
            switch resource {
            case .token(let token):
                let refers = [token.locations.issuer] + token.deliverTo.map(\.location)
                guard !duplicateLocations.contains(token.metadata.location), !refers.contains(where: dangling.contains) else { continue }
                set.tokens.append(token)
            case .issuer(let issuer):
                if !duplicateLocations.contains(issuer.metadata.location) { set.issuers[issuer.metadata.name] = issuer }
            case .store(let store):
                if !duplicateLocations.contains(store.metadata.location) { set.stores[store.metadata.name] = store }
            case .policy(let policy):
                if !duplicateLocations.contains(policy.metadata.location) { set.policies.append(policy) }
            }
        }
        set.tokens.sort { $0.id < $1.id }
        set.policies.sort { $0.metadata.name < $1.metadata.name }
    }
}
