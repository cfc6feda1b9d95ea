import Foundation
import TestSupport
import Testing
import TokenctlBuiltinIssuer
import TokenctlModel
import TokenctlPostgresState
import TokenctlState

/// Several `reconcile --watch` replicas on one PostgreSQL state: one leads (holds the lease) and acts; when it is
/// killed or stalled another takes over within the lease; a stalled former leader cannot write; nothing is issued twice.
@Suite(.serialized) struct ReplicaTests {
    static let lease = 6.0

    @Test func oneReplicaActsAndAnotherTakesOverAfterSIGKILLAndSIGSTOP() async throws {
        let cluster = try PostgresTestCluster.shared()
        let stateURL = try cluster.createDatabase(prefix: "replicas")
        let workspace = ApplyCommandTests.Workspace()
        defer { workspace.remove() }
        let tokens = (0..<4).map { ControllerTests.token("r\($0)", every: "4s", overlap: "2s") }.joined()
        workspace.write(ManifestText.header() + tokens)
        let environment = ["TOKENCTL_STATE_URL": stateURL, "TOKENCTL_LEASE": "\(Int(Self.lease))s", "TOKENCTL_LOG_LEVEL": "info"]
        var replicas: [pid_t: ControllerProcess] = [:]
        for index in 0..<3 {
            let scratch = workspace.root + "/replica\(index)"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            let replica = try ControllerProcess(["reconcile", "--watch", "-f", workspace.root + "/tokens.yaml", "--state-dir", workspace.state,
                                                 "--interval", "2s", "--listen", "127.0.0.1:0"], environment: environment, scratch: scratch)
            try replica.waitUntilListening()
            replicas[replica.pid] = replica
        }
        func leader() -> pid_t? {
            let text = (try? cluster.psql("SELECT coalesce(pid, 0) FROM tokenctl_lock WHERE expires_at > extract(epoch FROM now())", url: stateURL)) ?? ""
            return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { $0 == 0 ? nil : $0 }
        }
        func serial() -> Int {
            Int(((try? cluster.psql("SELECT serial FROM tokenctl_meta", url: stateURL)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }

        // One leader, and it rotates: the serial keeps moving.
        let first = try #require(waitFor(timeout: 30) { leader() })
        #expect(replicas[first] != nil)
        let serialBefore = serial()
        #expect(waitFor(timeout: 15) { serial() > serialBefore + 2 ? true : nil } == true, "the leader does not act")
        #expect(leader() == first, "leadership moved without a failure")
        // The standbys say so on /readyz and in metrics.
        for (pid, replica) in replicas where pid != first {
            #expect(replica.request("GET", "/readyz").body.contains("standby"))
            #expect(replica.metric("tokenctl_leader") == 0)
        }
        #expect(replicas[first]?.metric("tokenctl_leader") == 1)

        // SIGKILL the leader: another replica leads and acts.
        let killedAt = Date()
        replicas[first]?.signal(SIGKILL)
        _ = replicas[first]?.waitForExit(timeout: 10)
        let second = try #require(waitFor(timeout: Self.lease * 3) { leader().flatMap { $0 != first ? $0 : nil } })
        let afterKill = serial()
        #expect(waitFor(timeout: 30) { serial() > afterKill ? true : nil } == true, "the new leader does not act")
        let killFailover = Date().timeIntervalSince(killedAt)
        print("failover after SIGKILL: \(String(format: "%.1f", killFailover)) s (lease \(Self.lease) s)")
        #expect(killFailover < Self.lease * 3)

        // SIGSTOP the new leader: its lease lapses and the third replica takes over; resumed, the old one stands by.
        let stoppedAt = Date()
        replicas[second]?.signal(SIGSTOP)
        let third = try #require(waitFor(timeout: Self.lease * 3) { leader().flatMap { $0 != second ? $0 : nil } })
        #expect(third != first)
        let stopFailover = Date().timeIntervalSince(stoppedAt)
        print("failover after SIGSTOP: \(String(format: "%.1f", stopFailover)) s (lease \(Self.lease) s)")
        #expect(stopFailover < Self.lease * 3)
        // Resume the stalled replica before expecting the new leader to issue: builtin tokens live in one local
        // SQLite file (authority.db) that a process stopped in the middle of a write keeps locked.
        replicas[second]?.signal(SIGCONT)
        let afterStop = serial()
        #expect(waitFor(timeout: 30) { serial() > afterStop ? true : nil } == true, "the new leader does not act")
        #expect(waitFor(timeout: 15) { replicas[second]?.request("GET", "/readyz").body.contains("standby") == true ? true : nil } == true)
        #expect(leader() == third)

        // Stop everything gracefully, then check that nothing was issued twice or left behind.
        for (pid, replica) in replicas where pid != first { replica.signal(SIGTERM) }
        for (pid, replica) in replicas where pid != first { #expect(replica.waitForExit(timeout: 20) == 0) }
        #expect(leader() == nil, "the lease was not released on SIGTERM")
        let state = try await PostgresStateStore(url: stateURL).load()
        #expect(state.tokens.count == 4)
        var recorded: Set<String> = []
        for token in state.tokens.values {
            let versions = token.versions.map(\.version)
            #expect(Set(versions).count == versions.count, "a version was issued twice for \(token.id)")
            #expect(token.versions.filter { $0.status == .active }.count == 1)
            #expect(token.versions.count(where: { $0.status == .retiring || $0.status == .active }) <= 2)
            for version in token.versions where version.status != .revoked { recorded.insert(version.credentialID) }
        }
        // Every credential still valid at the issuer is one the state knows (nothing issued behind the state's back),
        // apart from a pending repair after the SIGKILL, which the next pass resolves.
        let live = Set(try BuiltinAuthority(directory: workspace.state, mode: .readOnly).list(issuer: "local").filter { !$0.revoked }.map(\.credentialID))
        #expect(live.subtracting(recorded).isEmpty, "credentials valid at the issuer but unknown to state: \(live.subtracting(recorded))")
        let audit = try workspace.run(["audit", "-f", "DIR", "--verify"], environment: ["TOKENCTL_STATE_URL": stateURL])
        #expect(audit.status == 0, "\(audit.stderr)")
    }
}
