import ArgumentParser
import Foundation
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlReconciler

/// `tokenctl verify`: checks a token presented on stdin against the builtin issuer.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a builtin-issuer token read from stdin: valid or not, its id, scopes and expiry.",
        discussion: "Exit codes: 0 valid, 1 not valid (bad checksum, unknown, expired or revoked) or an error. The token is never printed."
    )

    @OptionGroup var manifests: ManifestOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "Judge expiry as of this time.")
    var at: String?

    func run() async throws {
        let now = try ClockOption.moment(at)
        guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
            printError("tokenctl: error: no token on stdin; pipe it in, e.g. tokenctl secret get NS/NAME | tokenctl verify")
            throw ExitCode(1)
        }
        let token = Secret(line)
        let directory = manifests.stateDirectory
        guard FileManager.default.fileExists(atPath: directory + "/" + BuiltinAuthority.fileName) else {
            printError("tokenctl: error: there is no builtin issuer's authority in \(manifests.stateDirectoryForMessages), so no token can be checked; pass -f "
                       + "with the manifests that were applied (the state is .tokenctl beside the first path) or --state-dir "
                       + "with the directory that holds authority.db")
            throw ExitCode(1)
        }
        let authority: BuiltinAuthority
        do {
            authority = try BuiltinAuthority(directory: manifests.stateDirectory, mode: .readWrite)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        let result: Verification
        do {
            result = try authority.verify(token, now: now)
        } catch {
            printError("tokenctl: error: \(error)")
            throw ExitCode(1)
        }
        switch result {
        case .valid(let credential):
            if json {
                print(try PlanJSON.encode(["valid": "true", "credentialID": credential.credentialID, "issuer": credential.issuer,
                                           "subject": credential.subject, "scope": credential.scopes.joined(separator: " "),
                                           "expiresAt": credential.expiresAt?.description ?? "never"]))
            } else {
                print("valid: credential \(credential.credentialID) of issuer \(credential.issuer) for \(credential.subject) "
                      + "(owner \(credential.owner)); scopes \(credential.scopes.joined(separator: " ")); "
                      + "expires \(credential.expiresAt?.description ?? "never")")
            }
        case .invalid(let reason):
            if json { print(try PlanJSON.encode(["valid": "false", "reason": reason.rawValue])) } else { print("invalid: \(reason.rawValue)") }
            throw ExitCode(1)
        }
    }
}
