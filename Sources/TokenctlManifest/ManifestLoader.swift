import Dispatch
import Foundation
import TokenctlModel

/// Everything one load of the manifests produced: the desired state and every diagnostic.
public struct ManifestLoadResult: Sendable {
    /// The resources that decoded without errors.
    public var manifests: ManifestSet
    /// Every diagnostic, sorted by file and position.
    public var diagnostics: [Diagnostic]
    /// The files read, in the order given.
    public var files: [String]
    /// The number of documents read.
    public var documents: Int

    /// Whether the manifests have no errors (policy violations and warnings aside).
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    /// Whether some policy is violated.
    public var hasPolicyViolations: Bool { diagnostics.contains { $0.severity == .policy } }
}

/// Finds manifest files, decodes them in parallel and validates the set as a whole.
///
/// ```swift
/// let result = ManifestLoader().load(paths: ["Examples/quickstart"], now: Timestamp(secondsSinceEpoch: 1_800_000_000))
/// for diagnostic in result.diagnostics { print(diagnostic.message) }
/// ```
public struct ManifestLoader: Sendable {
    /// Bounds on hostile input.
    public var limits: DecodingLimits

    /// Creates a loader.
    public init(limits: DecodingLimits = DecodingLimits()) {
        self.limits = limits
    }

    /// Reads, decodes, validates and checks policy for every manifest under `paths` as of `now`.
    public func load(paths: [String], now: Timestamp) -> ManifestLoadResult {
        var diagnostics: [Diagnostic] = []
        let files = ManifestFiles.discover(paths: paths, diagnostics: &diagnostics)
        let results = decodeInParallel(files)
        var resources: [DecodedResource] = []
        var declared: [DeclaredName] = []
        var references: [NameReference] = []
        var documents = 0
        for result in results {
            resources.append(contentsOf: result.resources)
            declared.append(contentsOf: result.declared)
            references.append(contentsOf: result.references)
            diagnostics.append(contentsOf: result.diagnostics)
            documents += result.documents
        }
        var set = ManifestSet()
        SetValidator.assemble(resources, declared: declared, references: references, into: &set, diagnostics: &diagnostics)
        if !diagnostics.contains(where: { $0.severity == .error }) {
            diagnostics.append(contentsOf: PolicyChecker.check(set, now: now))
        }
        return ManifestLoadResult(manifests: set, diagnostics: Diagnostic.sortedForDisplay(diagnostics), files: files,
                                  documents: documents)
    }

    /// Decodes one file's bytes (exposed for tests and the benchmark).
    public func decode(bytes: UnsafeBufferPointer<UInt8>, file: String) -> (documents: Int, diagnostics: [Diagnostic]) {
        let result = decodeBuffer(bytes, file: file)
        return (result.documents, result.diagnostics)
    }

    func decodeInParallel(_ files: [String]) -> [FileDecodingResult] {
        let slots = ResultSlots(count: files.count)
        // Largest files first, so one big file does not start last and leave a core idle.
        let order = files.indices.sorted { ManifestFiles.size(of: files[$0]) > ManifestFiles.size(of: files[$1]) }
        DispatchQueue.concurrentPerform(iterations: files.count) { position in
            let index = order[position]
            slots.set(index, decodeFile(files[index]))
        }
        return slots.values
    }

    func decodeFile(_ path: String) -> FileDecodingResult {
        let start = SourceLocation(file: path, line: 1, column: 1)
        func failure(_ code: String, _ message: String) -> FileDecodingResult {
            var result = FileDecodingResult()
            result.diagnostics.append(Diagnostic(.error, code, message, at: start))
            return result
        }
        let size = ManifestFiles.size(of: path)
        if size > limits.maxFileBytes {
            return failure("file-too-large", "the file is \(size >> 20) MiB, more than the \(limits.maxFileBytes >> 20) MiB a manifest file may have; "
                           + "split it into several files")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return failure("unreadable", "cannot read the file; check that it exists and that you may read it")
        }
        return data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            if bytes.contains(0) {
                return failure("binary-file", "the file contains NUL bytes, so it is not a YAML text file; remove it from the manifest paths")
            }
            return decodeBuffer(bytes, file: path)
        }
    }

    func decodeBuffer(_ bytes: UnsafeBufferPointer<UInt8>, file: String) -> FileDecodingResult {
        let reader = YAMLEventReader(input: bytes, maxPendingBytes: limits.maxPendingBytes)
        let decoder = FileDecoder(file: file, stream: EventStream(reader: reader, limits: limits))
        decoder.decodeAll()
        return decoder.result
    }
}

/// One result per file, written from concurrent workers at distinct indices.
private final class ResultSlots: @unchecked Sendable {
    private var storage: [FileDecodingResult]
    private let lock = NSLock()

    init(count: Int) { storage = Array(repeating: FileDecodingResult(), count: count) }

    func set(_ index: Int, _ value: FileDecodingResult) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [FileDecodingResult] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// Finds the `.yaml`/`.yml` files under the paths given with `-f`.
enum ManifestFiles {
    static func discover(paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var files: [String] = []
        var seen = Set<String>()
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.append(Diagnostic(.error, "missing-path", "'\(path)' does not exist; pass a manifest file or a directory of them with -f",
                                              at: nil))
                continue
            }
            guard isDirectory.boolValue else {
                if seen.insert(path).inserted { files.append(path) }
                continue
            }
            var found: [String] = []
            let base = path.hasSuffix("/") ? String(path.dropLast()) : path
            if let enumerator = manager.enumerator(atPath: path) {
                while let relative = enumerator.nextObject() as? String {
                    let name = (relative as NSString).lastPathComponent
                    if name.hasPrefix(".") {
                        // Hidden folders such as .git and .tokenctl hold no manifests.
                        if (enumerator.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { enumerator.skipDescendants() }
                        continue
                    }
                    if name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                        let full = base + "/" + relative
                        var isDir: ObjCBool = false
                        if manager.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue { found.append(full) }
                    }
                }
            }
            if found.isEmpty {
                diagnostics.append(Diagnostic(.error, "no-manifests", "'\(path)' contains no .yaml or .yml files; pass the directory that holds the manifests",
                                              at: nil))
            }
            for file in found.sorted() where seen.insert(file).inserted { files.append(file) }
        }
        return files
    }

    static func size(of path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}
