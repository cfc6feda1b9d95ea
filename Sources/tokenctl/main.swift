import Foundation
import Logging
import TokenctlCommands

// Only the executable configures logging: libraries take a Logger. TOKENCTL_LOG_LEVEL picks the level
// (trace, debug, info, notice, warning, error, critical; default warning); logs go to stderr.
let level = ProcessInfo.processInfo.environment["TOKENCTL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = level
    return handler
}

await Tokenctl.runMain()
