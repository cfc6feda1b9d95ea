import Foundation
import Testing
import TokenctlModel
import TokenctlPlanner

/// A plan with one change of each action, made by the planner from fixture state.
private func planWithEveryAction() -> Plan {
    let desired = [
        token("payments/orders-api-ci"),
        token("payments/reporting-reader", issuer: "local"),
        token("payments/scoped", scopes: ["read", "write"]),
        token("payments/sync-delivered", deliverTo: [("vault", "payments/x"), ("file", "ci.env")]),
    ]
    let records = [
        recorded("payments/reporting-reader", versions: [
            version(2, issuedAt: ago("62d"), status: .retiring, retireAfter: timestamp("2026-11-01T04:10:00Z")),
            version(3, issuedAt: ago("31d")),
        ]),
        recorded("payments/scoped"),
        recorded("payments/sync-delivered"),
    ]
    let inventory = records.flatMap { $0.versions.map { observed("local", $0.credentialID) } }
        + [observed("local", "1042", hint: "tkc_…a91f")]
    return plan(desired, records, observed: Observation(inventories: ["local": inventory]))
}

private func encode(_ plan: Plan) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(plan), as: UTF8.self)
}

@Suite struct PlanRendererTests {
    @Test func oneChangeOfEachAction() {
        let plan = planWithEveryAction()
        #expect(plan.changes.map(\.action) == [.issue, .rotate, .retire, .update, .redeliver, .ghost])
        // Pinned from a run and checked against SPEC §2: a line per change, the reason under it, a summary last.
        let expected = """
        Planned for 2026-11-30 12:00 UTC at state serial 7, issuers refreshed:
          + issue     payments/orders-api-ci v1         local        expires in 90d
                      NotIssued: no credential yet
          ~ rotate    payments/reporting-reader v3 → v4 local        expires in 90d
                      RotationDue: age 31d ≥ every 30d
          - retire    payments/reporting-reader v2      local
                      OverlapEnded: successor v3 active since 2026-10-30 12:00 UTC
          ~ update    payments/scoped v1                local
                      SpecChanged: scopes [read] → [read, write]
          > redeliver payments/sync-delivered v1        local        file:ci.env
                      DeliveryMissing: not in file:ci.env
          ! ghost     tkc_…a91f (id 1042)               local
                      Unmanaged: valid at the issuer but not recorded in this state (made by hand or by another state, or recorded in a state since lost or restored from an older backup: tokenctl state rebuild); reported only (issuer ghosts: report)

        Plan: 1 to issue, 1 to rotate, 1 to update, 1 to redeliver, 1 to retire, 1 ghost reported.

        """
        let text = PlanRenderer.human(plan, colors: false)
        #expect(text == expected)
    }

    @Test func columnsLineUpForEveryAction() {
        // The subject column starts at the same place on every change line, whatever the action
        // (`redeliver` is the longest action name, 9 characters), and the reason lines start there too (SPEC §2).
        let lines = PlanRenderer.human(planWithEveryAction()).split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
        let subjectColumns = Set(lines.map { line -> Int in
            let afterSymbol = line.dropFirst(4)  // "  + "
            let action = afterSymbol.prefix { $0 != " " }
            return 4 + action.count + afterSymbol.dropFirst(action.count).prefix { $0 == " " }.count
        })
        #expect(subjectColumns.count == 1, "\(lines.joined(separator: "\n"))")
        let reasonIndents = Set(PlanRenderer.human(planWithEveryAction()).split(separator: "\n").filter { $0.hasPrefix("   ") }
            .map { $0.prefix { $0 == " " }.count })
        #expect(reasonIndents == subjectColumns)
    }

    @Test func emptyPlan() {
        let plan = plan([token("payments/x")], [recorded("payments/x")])
        #expect(PlanRenderer.human(plan, colors: false) == "No changes. Issued credentials match the manifests.\n")
        #expect(PlanRenderer.summary(plan) == "No changes.")
    }

    @Test func coloursOnlyWhenAsked() {
        let plan = plan([token("payments/x")])
        #expect(!PlanRenderer.human(plan, colors: false).contains("\u{1B}["))
        #expect(PlanRenderer.human(plan, colors: true).contains("\u{1B}[32m+\u{1B}[0m"))
    }

    @Test func summaryCountsGhosts() {
        let reported = plan([], [], observed: Observation(inventories: ["local": [observed("local", "1042")]]))
        #expect(PlanRenderer.summary(reported) == "Plan: 1 ghost reported.")
        let retired = plan([], [], observed: Observation(inventories: ["strict": [observed("strict", "1042")]]))
        #expect(PlanRenderer.summary(retired) == "Plan: 1 ghost to retire.")
        let both = plan([], [], observed: Observation(inventories: [
            "local": [observed("local", "1"), observed("local", "2")], "strict": [observed("strict", "3")],
        ]))
        #expect(PlanRenderer.summary(both) == "Plan: 1 ghost to retire, 2 ghosts reported.")
    }

    @Test func noSecretMaterialIsRendered() {
        // Plans show hints and ids, never fingerprints of secrets.
        let text = PlanRenderer.human(planWithEveryAction())
        #expect(!text.contains("sha256:"))
        #expect(!text.contains("fp-1"))
    }

    @Test func jsonRoundTrip() throws {
        let plan = planWithEveryAction()
        let json = try encode(plan)
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(json.utf8))
        #expect(decoded == plan)
        #expect(json.contains(#""formatVersion":1"#))
        #expect(json.contains(#""action":"rotate""#))
        #expect(json.contains(#""reason":"RotationDue""#))
        #expect(json.contains(#""reason":"NotIssued""#))
        #expect(json.contains(#""token":"payments\/orders-api-ci""#) || json.contains(#""token":"payments/orders-api-ci""#))
        #expect(json.contains(#""createdAt":"2026-11-30T12:00:00Z""#))
        #expect(!json.contains("sha256:"))
    }

    @Test func jsonOfAnEmptyPlan() throws {
        let plan = plan([token("payments/x")], [recorded("payments/x")])
        let json = try encode(plan)
        #expect(try JSONDecoder().decode(Plan.self, from: Data(json.utf8)) == plan)
        #expect(json.contains(#""changes":[]"#))
        #expect(json.contains(#""stateSerial":7"#))
    }
}
