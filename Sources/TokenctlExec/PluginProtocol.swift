import Foundation
import TokenctlModel

/// The messages of the exec issuer protocol `tokenctl.io/plugin/v1`: one JSON request on the plugin's stdin, one JSON
/// response on its stdout, per run. `docs/plugins.md` is the reference for plugin authors.
package enum PluginProtocol {
    /// The protocol version this build speaks.
    package static let apiVersion = "tokenctl.io/plugin/v1"

    /// The operations a plugin may offer.
    package enum Operation: String, Codable, Sendable, CaseIterable {
        case capabilities, issue, revoke, list, lookup, verify, update
    }

    /// What every request carries, whatever its operation.
    package struct Request: Encodable {
        package var apiVersion = PluginProtocol.apiVersion
        package var operation: Operation
        /// The issuer's name in the manifests (absent in the handshake made while the manifests load).
        package var issuer: String?
        /// `exec.config` from the manifest, as written.
        package var config: JSONValue
        /// `exec.secrets` from the manifest, resolved (e.g. the backend's admin password).
        package var secrets: [String: String]
        package var requests: [IssueItem]?
        package var credentialIDs: [String]?
        package var idempotencyKey: String?
        package var credentialID: String?
        package var secret: String?
        package var scopes: [String]?
    }

    /// One credential to issue.
    package struct IssueItem: Encodable {
        /// `NAMESPACE/NAME`.
        package var token: String
        package var version: Int?
        package var owner: String
        package var scopes: [String]
        package var expiresAt: Timestamp?
        package var idempotencyKey: String?
    }

    /// The handshake's answer.
    package struct Capabilities: Decodable, Sendable, Hashable {
        package var apiVersion: String
        package var operations: [String]
        package var updateInPlace: Bool?
        package var overlap: Bool?
        package var inventory: Bool?
        package var idempotencyLookup: Bool?
        /// The most requests one `issue` run takes (1 when absent: no batching).
        package var batch: Int?
    }

    /// The answer to `issue`: one result per request, in order.
    package struct IssueResponse: Decodable {
        package var apiVersion: String
        package var results: [IssueResult]
    }

    /// One request's result: a credential, or an error sentence for that request alone.
    package struct IssueResult: Decodable {
        package var credentialID: String?
        /// Absent when the idempotency key was used before (the earlier credential, whose secret is gone).
        package var secret: String?
        package var hint: String?
        package var error: String?
    }

    /// The answer to `list`.
    package struct ListResponse: Decodable {
        package var apiVersion: String
        package var credentials: [ListedCredential]
    }

    /// One credential of the inventory.
    package struct ListedCredential: Decodable {
        package var credentialID: String
        package var hint: String?
        package var expiresAt: Timestamp?
        package var revoked: Bool?
        /// False for a credential that fits the plugin's naming but lacks its ownership marker.
        package var marked: Bool?
    }

    /// The answer to `lookup`.
    package struct LookupResponse: Decodable {
        package var apiVersion: String
        package var credentialID: String?
    }

    /// The answer to `verify`.
    package struct VerifyResponse: Decodable {
        package var apiVersion: String
        package var valid: Bool
    }

    /// The answer to `revoke` and `update`: nothing but the version (failure is a non-zero exit with a sentence on stderr).
    package struct Acknowledgement: Decodable {
        package var apiVersion: String
    }
}

extension PluginProtocol {
    /// Only the version of a response, read before the rest.
    private struct VersionProbe: Decodable { var apiVersion: String? }

    /// The response of one run to `operation`, checked: exit status 0, a JSON object, this `apiVersion`, the fields the
    /// operation answers with. Every failure is `failure(detail)`, with what the plugin said on stderr masked (`known`
    /// secrets and anything that looks like one).
    static func response<Response: Decodable>(_ output: PluginProcess.Output, to operation: String, as: Response.Type,
                                              hiding known: [String], failure: (String) -> PluginFailure) throws(PluginFailure) -> Response {
        let said = SecretMask.excerpt(output.stderr, hiding: known)
        guard output.status == 0 else {
            throw failure("failed \(operation) with exit status \(output.status)" + (said.isEmpty ? "" : ": " + said))
        }
        guard let version = try? JSONDecoder().decode(VersionProbe.self, from: Data(output.stdout)) else {
            throw failure("answered \(operation) with something that is not a JSON object "
                          + "(\(output.stdout.count) bytes on stdout)" + (said.isEmpty ? "" : "; it said: " + said))
        }
        guard version.apiVersion == apiVersion else {
            throw failure("speaks \(version.apiVersion.map { "'\(SecretMask.line($0, hiding: known))'" } ?? "no apiVersion"), "
                          + "but this tokenctl speaks '\(apiVersion)'; update the plugin or tokenctl")
        }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(output.stdout))
        } catch let DecodingError.keyNotFound(key, _) {
            throw failure("answered \(operation) without the field '\(key.stringValue)'")
        } catch {
            throw failure("answered \(operation) with a response of the wrong shape (expected the \(operation) response of docs/plugins.md)")
        }
    }
}

/// A JSON value: an exec issuer's `config`, passed to the plugin as written.
package indirect enum JSONValue: Hashable, Sendable, Encodable {
    case string(String)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .null: try container.encodeNil()
        case .array(let items): try container.encode(items)
        case .object(let fields): try container.encode(fields)
        }
    }
}
