import ArgumentParser
import Foundation
import TokenctlModel
import TokenctlPlanner

/// `tokenctl rotate`: rotate tokens now, on an operator's word (a leak, a departure), through plan and confirmation.
struct RotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Rotate tokens now, whatever their schedule: incident response, with a reason in the audit log.",
        discussion: """
            Names tokens as NS/NAME, or selects them with --selector label=value and --issuer NAME (each filter given \
            must match). Plans only these rotations, shows them and asks for confirmation as apply does. The current \
            credential overlaps its successor as the manifests say; with --compromised it is revoked at once (even when \
            its successor cannot be issued). Exit codes: 0 success, 1 error or a failed change, 3 policy violation.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Argument(help: "Tokens to rotate, as NAMESPACE/NAME.")
    var tokens: [String] = []

    @Option(help: "Rotate the tokens with this label, e.g. team=payments (repeatable).")
    var selector: [String] = []

    @Option(help: "Rotate the tokens of this issuer.")
    var issuer: String?

    @Option(help: "Why; required, and recorded in the audit log, e.g. \"INC-42: leaked in a CI log\".")
    var reason: String

    @Flag(help: "The current credentials are compromised: revoke them at once instead of letting them overlap their successors.")
    var compromised = false

    @Flag(help: "Rotate without asking for confirmation.")
    var autoApprove = false

    @OptionGroup var locking: LockOptions

    func validate() throws {
        if manifests.paths.isEmpty { throw ValidationError("Pass -f PATH: the manifests say which tokens exist.") }
        if tokens.isEmpty && selector.isEmpty && issuer == nil {
            throw ValidationError("Name the tokens to rotate (NS/NAME…), or select them with --selector label=value or --issuer NAME.")
        }
        for name in tokens where Self.tokenID(name) == nil {
            throw ValidationError("Invalid token name '\(name)': write NAMESPACE/NAME, e.g. payments/orders-api-ci.")
        }
        for label in selector where !label.contains("=") {
            throw ValidationError("Invalid --selector '\(label)': write label=value, e.g. team=payments.")
        }
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("Give a --reason: it is recorded in the audit log.") }
        try checkReason(reason)
    }

    func run() async throws {
        let now = ClockOption.now()
        try requireState(manifests, holding: "no token has been issued to rotate")
        let loaded = try loadManifestsOrExit(manifests.paths, now: now, quiet: true, holdingViolators: true)
        let labels = Dictionary(selector.map { label in
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }, uniquingKeysWith: { _, last in last })
        let request: RequestedRotation
        switch RequestedRotation.resolve(loaded.manifests, names: tokens.compactMap(Self.tokenID), labels: labels, issuer: issuer) {
        case .success(let selected): request = RequestedRotation(tokens: selected, reason: reason, compromised: compromised)
        case .failure(let refusal):
            printError("tokenctl: error: \(refusal); nothing was changed")
            throw ExitCode(1)
        }
        let workflow = ApplyWorkflow(
            command: compromised ? "rotate --compromised" : "rotate", manifestPaths: manifests.paths,
            stateDirectory: manifests.stateDirectory, stateURL: manifests.stateURL, source: .requested(request),
            autoApprove: autoApprove, lockTimeout: locking.lockTimeout,
            reason: reason, refresh: false, retirementGuard: nil, startFromEmptyState: false)
        try await workflow.run()
    }

    static func tokenID(_ name: String) -> TokenID? {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return TokenID(namespace: parts[0], name: parts[1])
    }
}
