/// Where notices go: a webhook (its URL a secret reference), the payload format, which tokens and which events.
///
/// ```yaml
/// apiVersion: tokenctl/v1
/// kind: Notifier
/// metadata: {name: security}
/// spec:
///   url: env:SECURITY_WEBHOOK_URL
///   format: slack
///   selector: {owners: ["team-*"]}
///   events: {expiring: {leadTimes: [14d, 3d, 1d]}, failing: {after: 1h}, ghost: {}}
/// ```
package struct Notifier: Hashable, Sendable {
    /// The payload a notice is posted as.
    package enum Format: String, Hashable, Sendable, CaseIterable {
        /// tokenctl's own JSON document (`docs/notices.md`).
        case json
        /// A Slack incoming-webhook message (`text`).
        case slack
        /// An alert list for Alertmanager's `POST /api/v2/alerts`.
        case alertmanager
    }

    /// The events a notifier wants, with their settings; nil means not wanted.
    package struct Events: Hashable, Sendable {
        /// Lead times before a credential that nothing will rotate expires (a permanent token's exception, a token
        /// whose issuer cannot rotate, a token held by policy).
        package var expiring: [TokenDuration]?
        /// How long a rotation or retirement must have been failing.
        package var failingAfter: TokenDuration?
        /// Ghost credentials found at an issuer.
        package var ghost: Bool
        /// How long a token must have gone unused.
        package var unusedAfter: TokenDuration?
        /// Policy violations.
        package var policyViolation: Bool
        /// Creation-rate limits that were hit.
        package var rateLimited: Bool

        /// The default lead times of `expiring: {}`.
        package static let defaultLeadTimes = [14, 3, 1].map { TokenDuration(seconds: $0 * 86_400) }
        /// The default of `failing: {}`.
        package static let defaultFailingAfter = TokenDuration(seconds: 3_600)
        /// The default of `unused: {}`.
        package static let defaultUnusedAfter = TokenDuration(seconds: 30 * 86_400)

        /// Creates a set of wanted events.
        package init(expiring: [TokenDuration]? = nil, failingAfter: TokenDuration? = nil, ghost: Bool = false,
                     unusedAfter: TokenDuration? = nil, policyViolation: Bool = false, rateLimited: Bool = false) {
            self.expiring = expiring
            self.failingAfter = failingAfter
            self.ghost = ghost
            self.unusedAfter = unusedAfter
            self.policyViolation = policyViolation
            self.rateLimited = rateLimited
        }

        /// Whether no event is wanted at all.
        package var isEmpty: Bool {
            expiring == nil && failingAfter == nil && !ghost && unusedAfter == nil && !policyViolation && !rateLimited
        }
    }

    /// Which tokens' notices a notifier gets: every pattern list that is present must match.
    package struct Selector: Hashable, Sendable {
        /// Owner patterns; nil matches every owner.
        package var owners: [GlobPattern]?
        /// Namespace patterns; nil matches every namespace.
        package var namespaces: [GlobPattern]?

        /// Creates a selector.
        package init(owners: [GlobPattern]? = nil, namespaces: [GlobPattern]? = nil) {
            self.owners = owners
            self.namespaces = namespaces
        }

        /// Whether a token of `owner` in `namespace` is selected. Notices about no token (a ghost) match a selector
        /// without owner or namespace patterns only.
        package func selects(owner: String?, namespace: String?) -> Bool {
            if let owners { guard let owner, owners.contains(where: { $0.matches(owner) }) else { return false } }
            if let namespaces { guard let namespace, namespaces.contains(where: { $0.matches(namespace) }) else { return false } }
            return true
        }
    }

    /// Name, labels, annotations and where it was declared.
    package var metadata: ResourceMetadata
    /// The webhook URL: a reference, never the URL itself (a webhook URL is a credential).
    package var url: SecretReference
    /// The payload format.
    package var format: Format
    /// The key of the `X-Tokenctl-Signature` HMAC-SHA256 header, when set.
    package var signingKey: SecretReference?
    /// Which tokens.
    package var selector: Selector
    /// Which events.
    package var events: Events
    /// How long one delivery attempt may take.
    package var timeout: TokenDuration

    /// The default `timeout`.
    package static let defaultTimeout = TokenDuration(seconds: 10)

    /// Creates a notifier.
    package init(metadata: ResourceMetadata, url: SecretReference, format: Format = .json, signingKey: SecretReference? = nil,
                 selector: Selector = Selector(), events: Events, timeout: TokenDuration = Notifier.defaultTimeout) {
        self.metadata = metadata
        self.url = url
        self.format = format
        self.signingKey = signingKey
        self.selector = selector
        self.events = events
        self.timeout = timeout
    }
}
