import Foundation
import TestSupport
import Testing
import TokenctlPostgresIssuer

@Suite struct SCRAMVerifierTests {
    @Test func matchesAVerifierPostgreSQLComputed() throws {
        // PostgreSQL 15 computed this for password 'tokenctl-test' with this salt:
        //   SELECT rolpassword FROM pg_authid after SET password_encryption = 'scram-sha-256'; CREATE ROLE … PASSWORD 'tokenctl-test'
        // (the salt is taken from its output; the keys must come out the same).
        let cluster = try PostgresTestCluster.shared()
        let role = "scram_vector_" + UUID().uuidString.prefix(6).lowercased()
        try cluster.psql("CREATE ROLE \(role) LOGIN PASSWORD 'tokenctl-test'")
        let stored = try cluster.psql("SELECT rolpassword FROM pg_authid WHERE rolname = '\(role)'").trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = stored.split(separator: "$")
        try #require(parts.count == 3 && parts[0] == "SCRAM-SHA-256")
        let header = parts[1].split(separator: ":")
        let salt = try #require(Data(base64Encoded: String(header[1])))
        let ours = try SCRAMVerifier.make(password: "tokenctl-test", salt: Array(salt), iterations: Int(header[0]) ?? 0)
        #expect(ours == stored)
        #expect(try SCRAMVerifier.make(password: "other", salt: Array(salt), iterations: 4_096) != stored)
    }

    @Test func aRoleWithOurVerifierLogsInWithThePassword() throws {
        let cluster = try PostgresTestCluster.shared()
        let role = "scram_login_" + UUID().uuidString.prefix(6).lowercased()
        let password = "Pw" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let verifier = try SCRAMVerifier.make(password: password)
        #expect(verifier.hasPrefix("SCRAM-SHA-256$4096:"))
        #expect(!verifier.contains(password))
        try cluster.psql("CREATE ROLE \(role) LOGIN PASSWORD '\(verifier)'")
        var components = try #require(URLComponents(string: cluster.adminURL))
        components.user = role
        components.password = password
        #expect(try cluster.psql("SELECT current_user", url: try #require(components.string)).contains(role))
        components.password = password + "x"
        #expect(throws: (any Error).self) { try cluster.psql("SELECT 1", url: components.string ?? "") }
    }
}
