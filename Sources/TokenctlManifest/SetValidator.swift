import TokenctlModel

/// Checks that need the whole manifest set: unique names and references that resolve.
///
/// This runs on one thread after the parallel decode, so it avoids sorting and re-copying the tokens.
enum SetValidator {
    private struct NameKey: Hashable {
        var kind: String
        var namespace: String?
        var name: String
    }

    /// Moves the tokens out of `results` (leaving them empty) so that no token is held twice.
    static func assemble(_ results: inout [FileDecodingResult], into set: inout ManifestSet, diagnostics: inout [Diagnostic]) {
        // Names: the first declaration by file and position wins; every other one is an error.
        var first: [NameKey: DeclaredName] = [:]
        var others: [(NameKey, DeclaredName)] = []
        var names: [String: Set<String>] = ["Issuer": [], "Store": []]
        first.reserveCapacity(results.reduce(0) { $0 + $1.declared.count })
        for result in results {
            for declared in result.declared {
                let key = NameKey(kind: declared.kind, namespace: declared.namespace, name: declared.name)
                if let existing = first[key] {
                    if declared.location < existing.location {
                        first[key] = declared
                        others.append((key, existing))
                    } else {
                        others.append((key, declared))
                    }
                } else {
                    first[key] = declared
                }
                if declared.kind != "Token" { names[declared.kind]?.insert(declared.name) }
            }
        }
        var excluded = Set<SourceLocation>()
        for (key, duplicate) in others {
            guard let original = first[key] else { continue }
            let scope = key.namespace.map { " in namespace '\($0)'" } ?? ""
            diagnostics.append(Diagnostic(.error, "duplicate-name",
                "\(key.kind) '\(key.name)'\(scope) is already defined at \(original.location); rename or remove one of them",
                at: duplicate.location))
            excluded.insert(duplicate.location)
        }
        // References: nearly every token names the same few issuers and stores, so remember the last hit.
        var lastHit: [String: String] = [:]
        for result in results {
            for reference in result.references {
                if lastHit[reference.kind] == reference.name { continue }
                let defined = names[reference.kind] ?? []
                if defined.contains(reference.name) {
                    lastHit[reference.kind] = reference.name
                    continue
                }
                diagnostics.append(danglingReference(reference, defined: defined.sorted()))
                excluded.insert(reference.location)
            }
        }
        set.tokens.reserveCapacity(results.reduce(0) { $0 + $1.resources.tokens.count })
        for index in results.indices {
            let resources = results[index].resources
            results[index] = FileDecodingResult()
            if excluded.isEmpty {
                if set.tokens.isEmpty { set.tokens = resources.tokens } else { set.tokens.append(contentsOf: resources.tokens) }
            } else {
                set.tokens.append(contentsOf: resources.tokens.filter { token in
                    !excluded.contains(token.metadata.location) && !excluded.contains(token.locations.issuer)
                        && !token.deliverTo.contains { excluded.contains($0.location) }
                })
            }
            for issuer in resources.issuers where !excluded.contains(issuer.metadata.location) { set.issuers[issuer.metadata.name] = issuer }
            for store in resources.stores where !excluded.contains(store.metadata.location) { set.stores[store.metadata.name] = store }
            set.policies.append(contentsOf: resources.policies.filter { !excluded.contains($0.metadata.location) })
        }
        set.policies.sort { $0.metadata.name < $1.metadata.name }
        checkIssuerSpecificFields(set, diagnostics: &diagnostics)
    }

    /// Scopes of postgres tokens name group roles (`role:NAME`); `secretFormat` only means something for them.
    private static func checkIssuerSpecificFields(_ set: ManifestSet, diagnostics: inout [Diagnostic]) {
        var postgresSettings: [String: Issuer.PostgresSettings] = [:]
        for issuer in set.issuers.values { if case .postgres(let settings) = issuer.kind { postgresSettings[issuer.metadata.name] = settings } }
        let postgresIssuers = Set(postgresSettings.keys)
        var roleNames: [String: TokenID] = [:]
        for token in set.tokens {
            if let settings = postgresSettings[token.issuer] {
                let role = token.issuer + "\u{0}" + settings.cleanRoleName(namespace: token.id.namespace, name: token.id.name, version: 1)
                if let other = roleNames[role], other != token.id {
                    diagnostics.append(Diagnostic(.error, "duplicate-name", "token \(token.id) and token \(other) would get the same role name on "
                                                  + "issuer '\(token.issuer)' (its roleTemplate maps both to the same characters); rename one "
                                                  + "of them or change the roleTemplate", at: token.locations.issuer))
                } else {
                    roleNames[role] = token.id
                }
            }
            guard postgresIssuers.contains(token.issuer) else {
                if token.secretFormat != nil {
                    diagnostics.append(Diagnostic(.error, "bad-value", "secretFormat only applies to tokens of postgres issuers; "
                                                  + "issuer '\(token.issuer)' delivers its own token format; remove secretFormat",
                                                  at: token.locations.issuer))
                }
                continue
            }
            for (scope, location) in zip(token.scopes, token.locations.scopes) where !scope.hasPrefix("role:") || scope.count <= 5 {
                diagnostics.append(Diagnostic(.error, "bad-value", "scope '\(scope)' of a postgres token must name a group role to grant, "
                                              + "as role:NAME (e.g. role:analytics_read)", at: location))
            }
        }
    }

    private static func danglingReference(_ reference: NameReference, defined: [String]) -> Diagnostic {
        let noun = reference.kind.lowercased()
        let verb = reference.kind == "Issuer" ? "names issuer" : "delivers to store"
        let available = defined.isEmpty
            ? "add \(reference.kind == "Issuer" ? "an" : "a") \(reference.kind) document named '\(reference.name)'"
            : "defined \(noun)s: \(defined.joined(separator: ", "))"
        return Diagnostic(.error, "unknown-\(noun)",
            "token '\(reference.token?.description ?? "?")' \(verb) '\(reference.name)', which is not defined"
            + "\(Suggestion.didYouMean(reference.name, among: defined)); \(available)",
            at: reference.location)
    }
}
