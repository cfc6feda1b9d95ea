import Dispatch
import TokenctlDrivers
import TokenctlModel

/// Checks that need the whole manifest set: unique names and references that resolve.
///
/// This runs after the parallel decode: it moves the tokens rather than copying or sorting them, and checks names on a second core.
enum SetValidator {
    private struct NameKey: Hashable {
        var kind: String
        var namespace: String?
        var name: String

        init(_ declared: DeclaredName) {
            kind = declared.kind
            namespace = declared.namespace
            name = declared.name
        }
    }

    /// Moves the tokens out of `results` (leaving them empty) so that no token is held twice.
    ///
    /// The name check, the costliest part, runs on one core while another joins the tokens and checks references.
    static func assemble(_ results: inout [FileDecodingResult], into set: inout ManifestSet, registry: DriverRegistry,
                         diagnostics: inout [Diagnostic]) {
        let declared = results.map(\.declared)
        let failedTokenReferences = results.map(\.references)
        // Each piece's tokens go into a box whose `take` hands them over uniquely, so joining moves them.
        let tokenPieces = ConcurrentSlots<[Token]>(count: results.count, initial: [])
        for index in results.indices {
            tokenPieces.set(index, results[index].resources.tokens)
            results[index].resources.tokens = []
        }
        var storesByName: [String: Store] = [:]
        for result in results { for store in result.resources.stores { storesByName[store.metadata.name] = store } }
        let stores = storesByName
        let nameCheck = ConcurrentSlots(count: 1, initial: NameCheck())
        let joined = ConcurrentSlots(count: 1, initial: JoinedTokens())
        // concurrentPerform, not an async block and a wait: the calling thread runs both parts itself if no other is free.
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            if part == 0 {
                nameCheck.set(0, checkUniqueNames(declared))
            } else {
                var outcome = JoinedTokens()
                outcome.tokens = joinTokens(tokenPieces.take())
                checkReferences(outcome.tokens, failedTokens: failedTokenReferences, declared: declared, into: &outcome.referenceErrors,
                                excluded: &outcome.excluded)
                checkStoreSlots(outcome.tokens, stores: stores, registry: registry, into: &outcome.referenceErrors)
                joined.set(0, outcome)
            }
        }
        let names = nameCheck.take().first ?? NameCheck()
        var outcome = joined.take().first ?? JoinedTokens()
        set.tokens = outcome.tokens
        outcome.tokens = []
        diagnostics.append(contentsOf: names.duplicates)
        diagnostics.append(contentsOf: outcome.referenceErrors)
        let excluded = outcome.excluded.union(names.excluded)
        if !excluded.isEmpty {
            set.tokens.removeAll { token in
                excluded.contains(token.metadata.location) || excluded.contains(token.locations.issuer)
                    || token.deliverTo.contains { excluded.contains($0.location) }
            }
        }
        for index in results.indices {
            let resources = results[index].resources
            results[index] = FileDecodingResult()
            for issuer in resources.issuers where !excluded.contains(issuer.metadata.location) { set.issuers[issuer.metadata.name] = issuer }
            for store in resources.stores where !excluded.contains(store.metadata.location) { set.stores[store.metadata.name] = store }
            set.policies.append(contentsOf: resources.policies.filter { !excluded.contains($0.metadata.location) })
            set.notifiers.append(contentsOf: resources.notifiers.filter { !excluded.contains($0.metadata.location) })
        }
        set.policies.sort { $0.metadata.name < $1.metadata.name }
        set.notifiers.sort { $0.metadata.name < $1.metadata.name }
        registry.validate(set, into: &diagnostics)
    }

    /// Every token in order, with the references that did not resolve.
    private struct JoinedTokens: Sendable {
        var tokens: [Token] = []
        var referenceErrors: [Diagnostic] = []
        var excluded = Set<SourceLocation>()
    }

    /// Duplicate names and the declarations they exclude.
    private struct NameCheck: Sendable {
        var duplicates: [Diagnostic] = []
        var excluded = Set<SourceLocation>()
    }

    /// The first declaration of a name by file and position wins; every other one is an error.
    ///
    /// Names are found by their fingerprint, an integer, which keeps the table small; two different names
    /// with the same fingerprint (possible, if unlikely) fall back to a table keyed by the names themselves.
    private static func checkUniqueNames(_ declared: [[DeclaredName]]) -> NameCheck {
        var firstByFingerprint: [Int: (list: Int32, index: Int32)] = [:]
        var firstByName: [NameKey: SourceLocation] = [:]
        var others: [DeclaredName] = []
        firstByFingerprint.reserveCapacity(declared.reduce(0) { $0 + $1.count })
        func record(_ name: DeclaredName, firstAt existing: SourceLocation) -> SourceLocation {
            guard name.location < existing else {
                others.append(name)
                return existing
            }
            var displaced = name
            displaced.location = existing
            others.append(displaced)
            return name.location
        }
        for (list, names) in declared.enumerated() {
            for (index, name) in names.enumerated() {
                guard let seen = firstByFingerprint[name.fingerprint] else {
                    firstByFingerprint[name.fingerprint] = (Int32(list), Int32(index))
                    continue
                }
                let earlier = declared[Int(seen.list)][Int(seen.index)]
                if NameKey(earlier) == NameKey(name) {
                    // Keep the first by position; the table then points at it.
                    if name.location < earlier.location { firstByFingerprint[name.fingerprint] = (Int32(list), Int32(index)) }
                    _ = record(name, firstAt: earlier.location)
                } else if let existing = firstByName[NameKey(name)] {
                    firstByName[NameKey(name)] = record(name, firstAt: existing)
                } else {
                    firstByName[NameKey(name)] = name.location
                }
            }
        }
        var check = NameCheck()
        for duplicate in others {
            let original: SourceLocation
            if let byName = firstByName[NameKey(duplicate)] {
                original = byName
            } else if let seen = firstByFingerprint[duplicate.fingerprint] {
                original = declared[Int(seen.list)][Int(seen.index)].location
            } else {
                continue
            }
            let scope = duplicate.namespace.map { " in namespace '\($0)'" } ?? ""
            check.duplicates.append(Diagnostic(.error, "duplicate-name",
                "\(duplicate.kind) '\(duplicate.name)'\(scope) is already defined at \(original); rename or remove one of them",
                at: duplicate.location))
            check.excluded.insert(duplicate.location)
        }
        return check
    }

    /// Every Issuer and Store a token names must be defined: those of the decoded tokens, and those recorded
    /// for tokens that failed to decode.
    private static func checkReferences(_ tokens: [Token], failedTokens: [[NameReference]], declared: [[DeclaredName]],
                                        into diagnostics: inout [Diagnostic], excluded: inout Set<SourceLocation>) {
        var issuers = Set<String>()
        var stores = Set<String>()
        for name in declared.joined() where name.kind != "Token" {
            if name.kind == "Issuer" { issuers.insert(name.name) } else if name.kind == "Store" { stores.insert(name.name) }
        }
        // Nearly every token names the same few issuers and stores, so remember the last one found.
        var lastIssuer: String?
        var lastStore: String?
        func resolve(_ name: String, in defined: Set<String>, last: inout String?, reference: @autoclosure () -> NameReference) {
            if name == last { return }
            if defined.contains(name) {
                last = name
                return
            }
            let reference = reference()
            diagnostics.append(danglingReference(reference, defined: defined.sorted()))
            excluded.insert(reference.location)
        }
        // Read through a buffer pointer rather than `for token in`, which copies each token (retaining every field).
        func resolveReferences(of token: Token) {
            resolve(token.issuer, in: issuers, last: &lastIssuer,
                    reference: NameReference(kind: "Issuer", name: token.issuer, token: token.id, location: token.locations.issuer))
            for delivery in token.deliverTo {
                resolve(delivery.store, in: stores, last: &lastStore,
                        reference: NameReference(kind: "Store", name: delivery.store, token: token.id, location: delivery.location))
            }
        }
        tokens.withUnsafeBufferPointer { buffer in
            for index in buffer.indices { resolveReferences(of: buffer[index]) }
        }
        for reference in failedTokens.joined() {
            if reference.kind == "Issuer" {
                resolve(reference.name, in: issuers, last: &lastIssuer, reference: reference)
            } else {
                resolve(reference.name, in: stores, last: &lastStore, reference: reference)
            }
        }
    }

    /// No two deliveries may land in the same entry of a store: one token's secret would overwrite the other's, and
    /// retiring one would delete the other's. Keys collide when equal (a default key `NS/NAME` equal to another
    /// token's explicit key) or when the store maps them to one entry (dotenv: `apps/web-api` and `apps-web/api`).
    private static func checkStoreSlots(_ tokens: [Token], stores: [String: Store], registry: DriverRegistry,
                                        into diagnostics: inout [Diagnostic]) {
        struct Slot: Hashable {
            var store: String
            var entry: String
        }
        var taken: [Slot: (token: TokenID, key: String, location: SourceLocation)] = [:]
        taken.reserveCapacity(tokens.count)
        func check(_ token: Token) {
            for delivery in token.deliverTo {
                let entry = stores[delivery.store].map { registry.entry(forKey: delivery.key, in: $0) } ?? delivery.key
                let slot = Slot(store: delivery.store, entry: entry)
                guard let first = taken[slot] else {
                    taken[slot] = (token.id, delivery.key, delivery.location)
                    continue
                }
                let owner = first.token == token.id ? "it already delivers there" : "token \(first.token) already delivers there"
                let how = first.key == delivery.key ? "key '\(delivery.key)'"
                    : "key '\(delivery.key)', which the store keeps as '\(entry)' like key '\(first.key)'"
                diagnostics.append(Diagnostic(.error, "store-slot-conflict",
                    "token \(token.id) delivers to store '\(delivery.store)' \(how); \(owner) (\(first.location)), so one secret "
                    + "would overwrite the other and retiring one would delete both; give one of them a different key",
                    at: delivery.location))
            }
        }
        tokens.withUnsafeBufferPointer { buffer in
            for index in buffer.indices { check(buffer[index]) }
        }
    }

    /// One array of every token, in file and document order, moved (not copied) out of the pieces.
    private static func joinTokens(_ pieces: consuming [[Token]]) -> [Token] {
        let total = pieces.reduce(0) { $0 + $1.count }
        if let only = pieces.firstIndex(where: { !$0.isEmpty }), pieces[only].count == total { return pieces[only] }
        return Array(unsafeUninitializedCapacity: total) { buffer, initialized in
            // Filled from the end, so that popping each piece's last token keeps the order.
            var position = total
            for index in pieces.indices.reversed() {
                while let token = pieces[index].popLast() {
                    position -= 1
                    buffer.initializeElement(at: position, to: token)
                }
            }
            initialized = total
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
