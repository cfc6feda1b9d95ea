import Logging
import TokenctlDrivers
import TokenctlModel
import TokenctlNotify
import TokenctlState

/// Assembles notice delivery for the controller and `tokenctl notices`: a webhook client, secret references read from
/// the environment or files, and the state's outbox.
///
/// ```swift
/// let (delivery, client) = NoticeSending.delivery(logger: logger)
/// defer { Task { await client.shutdown() } }
/// ```
package enum NoticeSending {
    /// A delivery with its own webhook client; shut the client down when done.
    package static func delivery(logger: Logger) -> (NoticeDelivery, WebhookClient) {
        let client = WebhookClient()
        let delivery = NoticeDelivery(client: client, resolve: { reference, what throws in
            try DriverContext.value(of: reference, what: what)
        }, logger: logger)
        return (delivery, client)
    }

    /// The state's outbox, or nil while there is no state (it is never created here).
    package static func outbox(directory: String, url: String?) throws -> (any NoticeOutbox)? {
        guard StateBackend.exists(directory: directory, url: url) else { return nil }
        return try StateBackend.open(directory: directory, url: url, mode: .readWrite)
    }
}
