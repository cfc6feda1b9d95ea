import Foundation
import TestSupport
import Testing
import TokenctlModel

/// Examples/postgres-roles as its README walks through it, on the test cluster.
@Suite(.serialized) struct PostgresExampleTests {
    @Test func theWalkthroughWorks() async throws {
        let cluster = try PostgresTestCluster.shared()
        let example = BinaryRunner.packageRoot.appendingPathComponent("Examples/postgres-roles").path
        let root = BinaryRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for file in ["tokens.yaml", "setup.sql"] {
            try FileManager.default.copyItem(atPath: example + "/" + file, toPath: root + "/" + file)
        }
        try cluster.psql((try String(contentsOfFile: root + "/setup.sql", encoding: .utf8)))
        defer {
            _ = try? cluster.psql("""
                DO $$ DECLARE r record; BEGIN
                  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'tk\\_analytics\\_%' LOOP EXECUTE format('DROP ROLE %I', r.rolname); END LOOP;
                END $$
                """)
            _ = try? cluster.psql("DROP ROLE IF EXISTS tokenctl_admin_example, analytics_read, exports_write, app_owner")
        }
        var admin = try #require(URLComponents(string: cluster.adminURL))
        admin.user = "tokenctl_admin_example"
        admin.password = "change-me"
        let environment = ["PG_ADMIN_URL": try #require(admin.string)]
        let now = Int64(Date().timeIntervalSince1970)
        func at(_ offset: Int64) -> String { Timestamp(secondsSinceEpoch: now + offset).description }
        func roles() throws -> [String] {
            try cluster.psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'tk\\_analytics\\_%' ORDER BY 1").split(separator: "\n").map(String.init)
        }
        func env(_ name: String) -> String {
            let text = (try? String(contentsOfFile: root + "/app.env", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? ""
        }

        #expect(try BinaryRunner.run(["validate", "-f", root]).status == 0)
        let plan = try BinaryRunner.run(["plan", "-f", root, "--refresh"], environment: environment)
        #expect(plan.status == 0, "\(plan.stderr)")
        let applied = try BinaryRunner.run(at: at(0), ["apply", "-f", root, "--auto-approve"], environment: environment)
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(try roles() == ["tk_analytics_nightly_export_v1", "tk_analytics_reporting_v1"])
        let v1 = env("REPORTING_DATABASE_URL")
        #expect(v1.hasPrefix("postgresql://tk_analytics_reporting_v1:"))
        #expect(try cluster.psql("SELECT current_user", url: v1).contains("tk_analytics_reporting_v1"))
        #expect(env("EXPORT_DB_PASSWORD").count == 32)

        // A week later the reporting role rotates; both versions log in during the day of overlap.
        let rotated = try BinaryRunner.run(at: at(7 * 86_400), ["apply", "-f", root, "--auto-approve"], environment: environment)
        #expect(rotated.status == 0, "\(rotated.stdout)\(rotated.stderr)")
        let v2 = env("REPORTING_DATABASE_URL")
        #expect(v2.hasPrefix("postgresql://tk_analytics_reporting_v2:"))
        #expect((try? cluster.psql("SELECT 1", url: v1)) != nil)
        #expect((try? cluster.psql("SELECT 1", url: v2)) != nil)
        // A role that owns something is reassigned to app_owner when it retires.
        try cluster.psql("CREATE TABLE owned_by_v1 (id int); ALTER TABLE owned_by_v1 OWNER TO tk_analytics_reporting_v1")
        #expect(try BinaryRunner.run(at: at(8 * 86_400 + 60), ["apply", "-f", root, "--auto-approve"], environment: environment).status == 0)
        #expect(try !roles().contains("tk_analytics_reporting_v1"))
        #expect((try? cluster.psql("SELECT 1", url: v1)) == nil)
        #expect(try cluster.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_v1'").contains("app_owner"))
        try cluster.psql("DROP TABLE owned_by_v1")
    }
}
