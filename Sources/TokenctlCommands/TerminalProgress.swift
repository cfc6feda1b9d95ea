import Dispatch
import Foundation
import Synchronization

/// A status line on a terminal's stderr for work that takes longer than a second ("Reading manifests… 3s"), erased
/// when the work ends. Nothing is shown when stderr is not a terminal, so logs and pipes stay clean.
final class TerminalProgress {
    private let timer: DispatchSourceTimer?
    private let queue = DispatchQueue(label: "tokenctl.progress")
    private let shown = ShownFlag()

    /// How long work runs before the line appears: `TOKENCTL_PROGRESS_AFTER` seconds (e.g. 0.5), else 1.
    static var delay: Double {
        ProcessInfo.processInfo.environment["TOKENCTL_PROGRESS_AFTER"].flatMap(Double.init).map { max(0, $0) } ?? 1
    }

    /// Starts showing `label` after `delay` seconds, with the elapsed time, until `finish`.
    init(_ label: String, delay: Double = TerminalProgress.delay) {
        guard isatty(2) == 1 else {
            timer = nil
            return
        }
        let started = Date()
        let timer = DispatchSource.makeTimerSource(queue: queue)
        self.timer = timer
        timer.schedule(deadline: .now() + delay, repeating: 0.5)
        timer.setEventHandler { [shown] in
            shown.value.withLock { $0 = true }
            let seconds = Int(Date().timeIntervalSince(started))
            FileHandle.standardError.write(Data("\r\u{1B}[K\(label)… \(seconds)s".utf8))
        }
        timer.resume()
    }

    /// Stops and erases the line, if one was shown.
    func finish() {
        guard let timer else { return }
        timer.cancel()
        // The handler may be running on the timer's (serial) queue: erase only after it is done.
        queue.sync {}
        if shown.value.withLock({ $0 }) { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// Runs `body` with a status line shown while it takes longer than a second.
    static func around<T>(_ label: String, _ body: () throws -> T) rethrows -> T {
        let progress = TerminalProgress(label)
        defer { progress.finish() }
        return try body()
    }
}

/// Whether the status line was drawn, set from the timer's queue.
private final class ShownFlag: Sendable {
    let value = Mutex(false)
}
