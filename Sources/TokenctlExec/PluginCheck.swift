import Foundation
import TokenctlDrivers
import TokenctlModel

/// Drives an exec issuer's plugin through a throwaway credential's whole life against its real backend, step by step:
/// how a plugin author knows the plugin keeps the protocol's promises.
///
/// ```swift
/// let passed = await PluginCheck(issuer: issuer, scopes: ["~cache:*", "+get"]).run(now: now) { print($0) }
/// ```
package struct PluginCheck: Sendable {
    /// One step's outcome.
    package struct Step: Sendable, CustomStringConvertible {
        /// What was checked.
        package var name: String
        /// Nil when it held, else why not.
        package var failure: String?
        /// Nil unless skipped (the plugin does not offer the operation).
        package var skipped: String?

        package var description: String {
            if let skipped { return "  skip  \(name): \(skipped)" }
            if let failure { return "  FAIL  \(name): \(failure)" }
            return "  ok    \(name)"
        }
    }

    let issuer: ExecIssuer
    let scopes: [String]

    /// Creates a check of `issuer`, issuing with `scopes`.
    package init(issuer: ExecIssuer, scopes: [String]) {
        self.issuer = issuer
        self.scopes = scopes
    }

    /// Runs every step, reporting each as it ends; true when none failed. What was issued is revoked at the end even
    /// when a step in between failed.
    package func run(now: Timestamp, report: (Step) -> Void) async -> Bool {
        var failed = false
        func step(_ name: String, _ body: () async throws -> String?) async {
            do {
                let problem = try await body()
                failed = failed || problem != nil
                report(Step(name: name, failure: problem))
            } catch {
                failed = true
                report(Step(name: name, failure: "\(error)"))
            }
        }
        func skip(_ name: String, _ operation: String) {
            report(Step(name: name, skipped: "the plugin does not offer \(operation)"))
        }
        let offered = issuer.offered
        let handshake = issuer.settings.handshake
        report(Step(name: "capabilities: \(PluginProtocol.apiVersion), operations \(offered.sorted().joined(separator: ", ")), "
                    + "batch \(handshake?.batch ?? 1), overlap \(handshake?.overlap == true ? "yes" : "no")"))

        let nonce = UUID().uuidString.prefix(8).lowercased()
        let request = IssueRequest(issuer: issuer.name, owner: "tokenctl-plugin-check", subject: "plugin-check/t-\(nonce)", scopes: scopes,
                                   expiresAt: now + TokenDuration(seconds: 3600), idempotencyKey: "plugin-check/t-\(nonce)#v1#\(nonce)", version: 1)
        var issued: IssuedCredential?
        await step("issue a throwaway credential (plugin-check/t-\(nonce), scopes \(scopes))") {
            let credential = try await issuer.issue([request], now: now)[0]
            issued = credential
            return credential.secret == nil ? "the first issue under a new idempotency key returned no secret" : nil
        }
        guard let credential = issued else { return false }
        guard let secret = credential.secret else {
            try? await issuer.revoke([credential.credentialID], now: now)
            return false
        }
        await step("issue again under the same idempotency key returns \(credential.credentialID) without a secret") {
            let again = try await issuer.issue([request], now: now)[0]
            if again.credentialID != credential.credentialID {
                try? await issuer.revoke([again.credentialID], now: now)
                return "it returned \(again.credentialID): a second credential (revoked again now)"
            }
            return again.secret == nil ? nil : "it returned a secret again (a retry must not mint a new one)"
        }
        if offered.contains("lookup") {
            await step("lookup by idempotency key finds \(credential.credentialID)") {
                let found = try await issuer.credential(forIdempotencyKey: request.idempotencyKey ?? "")
                return found == credential.credentialID ? nil : "it found \(found ?? "nothing")"
            }
            await step("lookup of an unknown key finds nothing") {
                let found = try await issuer.credential(forIdempotencyKey: "plugin-check/none#v1#\(nonce)")
                return found == nil ? nil : "it found \(found ?? "")"
            }
        } else {
            skip("lookup", "lookup (crash repair cannot find what an interrupted run issued)")
        }
        if offered.contains("list") {
            await step("list includes \(credential.credentialID)") {
                try await issuer.list().contains { $0.credentialID == credential.credentialID && !$0.revoked } ? nil : "it is not listed as live"
            }
        } else {
            skip("list", "list (no ghost detection, no --refresh)")
        }
        if offered.contains("verify") {
            await step("verify accepts the issued secret") {
                try await issuer.verify(credentialID: credential.credentialID, secret: secret) == true ? nil : "it answered invalid"
            }
            await step("verify refuses a wrong secret") {
                try await issuer.verify(credentialID: credential.credentialID, secret: Secret("wrong-\(nonce)")) == false ? nil : "it answered valid"
            }
        } else {
            skip("verify", "verify")
        }
        await step("revoke \(credential.credentialID)") {
            try await issuer.revoke([credential.credentialID], now: now)
            return nil
        }
        await step("revoke again is accepted (revocation is idempotent)") {
            try await issuer.revoke([credential.credentialID], now: now)
            return nil
        }
        if offered.contains("list") {
            await step("list no longer shows \(credential.credentialID) as live") {
                try await issuer.list().contains { $0.credentialID == credential.credentialID && !$0.revoked } ? "it is still listed as live" : nil
            }
        }
        if offered.contains("verify") {
            await step("verify refuses the revoked secret") {
                try await issuer.verify(credentialID: credential.credentialID, secret: secret) == false ? nil : "the revoked secret still works"
            }
        }
        return !failed
    }
}

extension PluginCheck {
    /// Why a check cannot start; the message says what to fix.
    package struct SetupError: Error, CustomStringConvertible {
        package var description: String
    }

    /// The check of the exec issuer `name` of `manifests`: its secrets resolved from `environment`, issuing with `scopes`,
    /// or, when none are given, the scopes of the first of its tokens.
    package init(issuer name: String, in manifests: ManifestSet, scopes: [String], environment: [String: String]) throws(SetupError) {
        guard let issuer = manifests.issuers[name] else {
            let known = manifests.issuers.keys.sorted()
            throw SetupError(description: "no issuer '\(name)' in the manifests" + (known.isEmpty ? "" : " (they define \(known.joined(separator: ", ")))"))
        }
        guard issuer.driver.settings(as: ExecSettings.self) != nil else {
            throw SetupError(description: "issuer '\(name)' is of type \(issuer.driver.type); plugin check drives exec issuers")
        }
        // Opened as apply opens it; an exec issuer reads no key, so the context resolves none.
        let context = DriverContext(stateDirectory: "", mode: .readOnly, environment: environment,
                                    resolveKey: { (_, _) throws(StoreError) -> [UInt8] in [] })
        let driver: any CredentialIssuer
        do {
            driver = try ExecIssuerKind().make(issuer, context: context)
        } catch {
            throw SetupError(description: "\(error)")
        }
        guard let execIssuer = driver as? ExecIssuer else {
            throw SetupError(description: "issuer '\(name)' did not open as an exec issuer")
        }
        let scopes = scopes.isEmpty ? manifests.tokens.first { $0.issuer == name }?.scopes ?? [] : scopes
        self.init(issuer: execIssuer, scopes: scopes)
    }

    /// The plugin's command line, for the report's heading.
    package var program: String { issuer.settings.command.joined(separator: " ") }
}
