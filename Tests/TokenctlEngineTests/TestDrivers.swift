import Synchronization
import TokenctlDrivers
import TokenctlModel

// Driver types that exist only in tests: each is one kind, registered with one line
// (`DriverRegistry.standard.adding(issuers: [MemoryIssuerKind(...)], stores: [WriteOnlyStoreKind(...)])`).

/// Settings of the test types: a label, required, so that decoding has something to check.
struct MemorySettings: DriverSettings {
    var label: String
}

/// Reads the `label` of a test type's section.
private func decodeLabel(_ section: ConfigNode?, display: String, spec: SourceLocation, reader: inout SettingsReader) -> MemorySettings? {
    guard let section, let fields = reader.mapping(section, display: display, fields: ["label"]) else {
        reader.missing("label", in: display, at: section?.location ?? spec)
        return nil
    }
    guard let label = fields["label"].flatMap({ reader.string($0.value, field: "label") }) else {
        reader.missing("label", in: display, at: section.location, written: fields)
        return nil
    }
    return MemorySettings(label: label.value)
}

/// The `memory` issuer type: hands out one `CredentialIssuer` held by the test.
struct MemoryIssuerKind: IssuerKind {
    let type = "memory"
    let section = "memory"
    let capabilities: IssuerCapabilities
    let fields = ["": ["label"]]
    let schemaName = "MemoryIssuer"
    let schemaDefinitions = ["MemoryIssuer": #"{"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}"#]
    let issuer: any CredentialIssuer

    init(_ issuer: any CredentialIssuer, capabilities: IssuerCapabilities = [.inventory, .idempotencyLookup, .overlap]) {
        self.issuer = issuer
        self.capabilities = issuer is any SecretReplaying ? capabilities.union(.replaysSecrets) : capabilities
    }

    func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        decodeLabel(section, display: "Issuer spec.memory", spec: spec, reader: &reader)
    }

    func make(_ issuer: Issuer, context: DriverContext) throws(DriverSetupError) -> any CredentialIssuer {
        self.issuer
    }

    /// An issuer of this type as the manifests would give it.
    static func issuer(_ name: String, location: SourceLocation) -> Issuer {
        Issuer(metadata: ResourceMetadata(name: name, location: location),
               driver: DriverConfiguration(type: "memory", settings: MemorySettings(label: name)),
               capabilities: [.updateInPlace, .inventory, .idempotencyLookup, .overlap])
    }
}

/// The `write-only-memory` store type: a store that takes secrets and never gives them back.
struct WriteOnlyStoreKind: StoreKind {
    let type = "write-only-memory"
    let section = "writeOnlyMemory"
    let capabilities: StoreCapabilities = []
    let fields = ["": ["label"]]
    let schemaName = "WriteOnlyMemory"
    let schemaDefinitions = ["WriteOnlyMemory": #"{"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}"#]
    let store: WriteOnlyStore

    func decode(_ section: ConfigNode?, spec: SourceLocation, reader: inout SettingsReader) -> (any DriverSettings)? {
        decodeLabel(section, display: "Store spec.writeOnlyMemory", spec: spec, reader: &reader)
    }

    func make(_ store: Store, context: DriverContext) throws(DriverSetupError) -> any SecretStore {
        self.store
    }
}

/// A store that can only be written: a webhook or a secret manager without read permission, in memory.
final class WriteOnlyStore: SecretStore, Sendable {
    /// What it holds, for the test's eyes only (tokenctl cannot look: this type does not conform to `ReadableSecretStore`).
    private let held = MemoryStore()

    func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        try await held.write(puts: puts, removes: removes)
    }

    /// The content fingerprint of what a key holds, as the engine records deliveries.
    func fingerprint(_ key: String) -> String? {
        held.entries.withLock { $0[key] }.map { contentFingerprint(key: key, secret: Secret($0)) }
    }
}

/// A `MemoryIssuer` that gives an issued secret again under its idempotency key (capability `replaysSecrets`).
struct ReplayingIssuer: SecretReplaying {
    let base: MemoryIssuer

    func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential] { try await base.issue(requests, now: now) }
    func revoke(_ credentialIDs: [String], now: Timestamp) async throws { try await base.revoke(credentialIDs, now: now) }
    func update(credentialID: String, scopes: [String]) async throws { try await base.update(credentialID: credentialID, scopes: scopes) }
    func list() async throws -> [ObservedCredential] { try await base.list() }
    func credential(forIdempotencyKey key: String) async throws -> String? { try await base.credential(forIdempotencyKey: key) }
    func replaySecret(forIdempotencyKey key: String) async throws -> Secret? { base.secrets.withLock { $0[key] } }
}

/// Stands for a crash at one checkpoint: the apply that reaches it suspends there for good (its task is never
/// resumed, like a killed process), and `reached` returns once it has.
final class CrashPoint: Sendable {
    let point: String
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(_ point: String) {
        self.point = point
        (stream, continuation) = AsyncStream.makeStream()
    }

    @Sendable func checkpoint(_ name: String) async {
        guard name == point else { return }
        continuation.yield()
        await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
    }

    func reached() async {
        var iterator = stream.makeAsyncIterator()
        _ = await iterator.next()
    }
}
