import TokenctlModel

/// The notices due at one moment, as `tokenctl notices` prints them (human table or JSON, format version 1).
package struct NoticeReport: Codable, Sendable {
    /// The JSON format's version.
    package var formatVersion = 1
    /// The moment they were computed for.
    package var generatedAt: Timestamp
    /// Whether this was a dry run (nothing was sent).
    package var dryRun: Bool
    /// The notices.
    package var notices: [Notice]

    /// Creates a report.
    package init(generatedAt: Timestamp, dryRun: Bool, notices: [Notice]) {
        self.generatedAt = generatedAt
        self.dryRun = dryRun
        self.notices = notices
    }

    /// The human table, a notice per row, and a summary line.
    package var text: String {
        guard !notices.isEmpty else {
            return dryRun ? "No notice is due at \(generatedAt.minuteText).\n" : "No new notice was due at \(generatedAt.minuteText).\n"
        }
        let header = ["NOTIFIER", "EVENT", "SUBJECT", "REASON"]
        var table = [header]
        for notice in notices {
            let subject = notice.token?.description ?? notice.credentialID.map { "\(notice.issuer ?? "?") \($0)" } ?? "-"
            table.append([notice.notifier, notice.event.rawValue, subject, notice.reason])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        var text = ""
        for line in table {
            text += line.enumerated().map { index, cell in index == line.count - 1 ? cell : cell.padding(to: widths[index]) }
                .joined(separator: "  ") + "\n"
        }
        text += "\n\(counted(notices.count, "notice")) " + (dryRun ? "due at \(generatedAt.minuteText) (dry run: nothing was sent).\n"
                                                                     : "queued at \(generatedAt.minuteText).\n")
        return text
    }
}
