import Foundation
import TokenctlEngine
import TokenctlModel

/// Where a request comes from: actor, host, and the git commit of the manifests.
package struct RequestOrigin: Sendable {
    /// A random id shared by the entries of one run.
    package var requestID: String
    /// Who asked (`RequestActor.name`).
    package var actor: String
    /// The host it ran on.
    package var host: String
    /// The git commit of the manifests, when they are in a repository.
    package var gitCommit: String?
    /// Whether the manifests had uncommitted changes.
    package var gitDirty: Bool?

    /// Creates an origin.
    package init(requestID: String, actor: String, host: String, gitCommit: String? = nil, gitDirty: Bool? = nil) {
        self.requestID = requestID
        self.actor = actor
        self.host = host
        self.gitCommit = gitCommit
        self.gitDirty = gitDirty
    }

    /// The origin of a request made now, from this process, about the manifests at `manifestPaths`.
    package static func current(manifestPaths: [String]) -> RequestOrigin {
        var generator = SystemRandomNumberGenerator()
        let directory = manifestPaths.first.map { path -> String in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            return isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        } ?? "."
        let commit = git(["rev-parse", "HEAD"], in: directory)
        let dirty = commit == nil ? nil : !(git(["status", "--porcelain", "--", "."], in: directory) ?? "").isEmpty
        return RequestOrigin(requestID: String(generator.next() as UInt64, radix: 16), actor: RequestActor.name,
                             host: ProcessInfo.processInfo.hostName, gitCommit: commit, gitDirty: dirty)
    }

    /// Runs git quietly; nil when git is missing or the directory is not in a repository.
    private static func git(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory.isEmpty ? "." : directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An audit entry of this request.
    package func entry(_ command: String, at: Timestamp, kind: String = "request", reason: String? = nil, detail: String? = nil) -> AuditEntry {
        AuditEntry(at: at, kind: kind, requestID: requestID, actor: actor, host: host, command: command, gitCommit: gitCommit,
                   gitDirty: gitDirty, reason: reason, detail: detail)
    }
}

/// Who is acting: TOKENCTL_ACTOR, the CI's actor, or the OS user.
package enum RequestActor {
    /// The name recorded in the audit log and the state lock.
    package static var name: String {
        let environment = ProcessInfo.processInfo.environment
        for variable in ["TOKENCTL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "USER", "LOGNAME"] {
            if let value = environment[variable], !value.isEmpty { return value }
        }
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }
}
