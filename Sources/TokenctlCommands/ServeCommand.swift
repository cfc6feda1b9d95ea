import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TokenctlBuiltinIssuer
import TokenctlHTTP
import TokenctlModel

/// `tokenctl serve`: the builtin issuer as an HTTP service for the services that check its tokens.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve RFC 7662 token introspection for the builtin issuer (POST /introspect), with /metrics, /healthz and /readyz.",
        discussion: """
            POST /introspect with the form field token answers {"active":true,"scope":…,"exp":…,"iat":…,"sub":…,\
            "token_type":"Bearer"}, or only {"active":false} for an unknown, revoked, expired or malformed token. \
            Each valid check records the token's last use (written every 5 seconds), which tokenctl status shows. \
            Bodies over 4 KiB are refused (413). Bind to loopback or put an authenticating proxy in front: \
            the endpoint itself does not authenticate callers.
            """
    )

    @OptionGroup var manifests: ManifestOptions

    @Option(help: "Where to listen: HOST:PORT, e.g. 127.0.0.1:8080, or :8080 for every interface.")
    var listen: String = "127.0.0.1:8080"

    @OptionGroup var limits: ServerLimitOptions

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try ListenAddress(parsing: listen)
    }

    func run() async throws {
        let logger = Logger(label: "tokenctl.serve")
        let registry = ControllerRunner.bootstrapMetrics()
        let directory = manifests.stateDirectory
        let (introspection, usage, index) = try orExit { () throws(Introspection.SetupError) in try Introspection.open(directory: directory, requireExisting: true, logger: logger) }
        let authorityPath = (directory as NSString).appendingPathComponent(BuiltinAuthority.fileName)
        let server = HTTPEndpoint.service(
            address: try ListenAddress(parsing: listen), registry: registry,
            readiness: {
                FileManager.default.isReadableFile(atPath: authorityPath)
                    ? (true, "the builtin authority is readable") : (false, "cannot read \(authorityPath)")
            },
            introspection: introspection, limits: limits.limits, logger: logger, onListening: ControllerRunner.announcer(logging.logFormat))
        try await ControllerRunner.run([server, usage, index], logger: logger)
    }
}
