import Dispatch
import Foundation
import TokenctlDrivers
import TokenctlModel

/// Everything one load of the manifests produced: the desired state and every diagnostic.
package struct ManifestLoadResult: Sendable {
    /// The resources that decoded without errors.
    package var manifests: ManifestSet
    /// Every diagnostic, sorted by file and position.
    package var diagnostics: [Diagnostic]
    /// The files read, in the order given.
    package var files: [String]
    /// The number of documents read.
    package var documents: Int

    /// Whether the manifests have no errors (policy violations and warnings aside).
    package var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    /// Whether some policy is violated.
    package var hasPolicyViolations: Bool { diagnostics.contains { $0.severity == .policy } }
    /// The tokens that violate a policy, each with the violations' messages: planning holds them, and only them.
    package var policyHolds: [TokenID: [String]] { PolicyChecker.holds(diagnostics) }
}

/// Finds manifest files, decodes them in parallel and validates the set as a whole.
///
/// ```swift
/// let result = ManifestLoader(registry: .standard).load(paths: ["Examples/quickstart"], now: Timestamp(secondsSinceEpoch: 1_800_000_000))
/// for diagnostic in result.diagnostics { print(diagnostic.message) }
/// ```
package struct ManifestLoader: Sendable {
    /// Bounds on hostile input.
    package var limits: DecodingLimits
    /// The issuer and store types, which decode and check their own settings.
    package let registry: DriverRegistry
    /// The fields of every object, the registry's settings sections included.
    let fieldTable: [String: [String]]

    /// Creates a loader for the types of `registry`.
    package init(registry: DriverRegistry, limits: DecodingLimits = DecodingLimits()) {
        self.limits = limits
        self.registry = registry
        fieldTable = ManifestFields.table(with: registry)
    }

    /// Reads, decodes, validates and checks policy for every manifest under `paths` as of `now`.
    package func load(paths: [String], now: Timestamp) -> ManifestLoadResult {
        var diagnostics: [Diagnostic] = []
        let files = ManifestFiles.discover(paths: paths, diagnostics: &diagnostics)
        var results = decodeInParallel(files)
        var documents = 0
        for result in results {
            diagnostics.append(contentsOf: result.diagnostics)
            documents += result.documents
        }
        var set = ManifestSet()
        SetValidator.assemble(&results, into: &set, registry: registry, diagnostics: &diagnostics)
        // Every diagnostic at once: the tokens that decoded are checked against policy even when others have errors.
        diagnostics.append(contentsOf: PolicyChecker.check(set, now: now))
        return ManifestLoadResult(manifests: set, diagnostics: Diagnostic.sortedForDisplay(diagnostics), files: files,
                                  documents: documents)
    }

    /// The manifest files under `paths`, as `load` would read them.
    package func discover(paths: [String]) -> [String] {
        var ignored: [Diagnostic] = []
        return ManifestFiles.discover(paths: paths, diagnostics: &ignored)
    }

    /// Decodes one file's bytes (exposed for tests and the benchmark).
    package func decode(bytes: UnsafeBufferPointer<UInt8>, file: String) -> (documents: Int, diagnostics: [Diagnostic]) {
        let result = decodeBuffer(bytes, file: file)
        return (result.documents, result.diagnostics)
    }

    /// Pulls every event of `bytes` through tokenctl's reader without decoding (for the benchmark's breakdown).
    package func countEvents(bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let stream = EventStream(reader: YAMLEventReader(input: bytes, maxPendingBytes: limits.maxPendingBytes), limits: limits)
        var count = 0
        while let event = try? stream.next(), event.kind != .streamEnd { count += 1 }
        return count
    }

    func decodeInParallel(_ files: [String]) -> [FileDecodingResult] {
        // Read the files in parallel and cut large ones at document markers, so that one big file
        // still keeps every core busy; the pieces are then decoded in parallel and kept in order.
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let prepared = ConcurrentSlots<(content: FileContents, chunks: [(range: Range<Int>, lineOffset: Int)])>(
            count: files.count, initial: (FileContents(path: "", bytes: []), []))
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            let content = FileContents(path: files[index], limits: limits)
            let pieces = content.bytes.count >= Self.chunkingThreshold ? cores * 4 : 1
            prepared.set(index, (content, DocumentChunks.split(content.bytes, into: pieces)))
        }
        let preparedFiles = prepared.take()
        let contents = preparedFiles.map(\.content)
        var pending: [(file: Int, range: Range<Int>, lineOffset: Int)] = []
        for (index, file) in preparedFiles.enumerated() {
            for chunk in file.chunks { pending.append((index, chunk.range, chunk.lineOffset)) }
        }
        let work = pending
        // Largest pieces first, so a big one does not start last and leave a core idle.
        let order = work.indices.sorted { work[$0].range.count > work[$1].range.count }
        let slots = ConcurrentSlots(count: work.count, initial: FileDecodingResult())
        DispatchQueue.concurrentPerform(iterations: work.count) { position in
            let index = order[position]
            let item = work[index]
            let content = contents[item.file]
            var result = FileDecodingResult()
            if let failure = content.failure {
                result.diagnostics.append(Diagnostic(.error, failure.code, failure.message,
                                                     at: SourceLocation(file: content.path, line: 1, column: 1)))
            } else {
                result = content.bytes.withUnsafeBufferPointer { buffer in
                    decodeBuffer(UnsafeBufferPointer(rebasing: buffer[item.range]), file: content.path, lineOffset: item.lineOffset)
                }
            }
            slots.set(index, result)
        }
        // Pieces stay separate (in file order) rather than being joined: joining would copy every token.
        var results = slots.take()
        var documents = [Int](repeating: 0, count: files.count)
        var failed = [Bool](repeating: false, count: files.count)
        var lastPiece = [Int](repeating: 0, count: files.count)
        for (index, result) in results.enumerated() {
            documents[work[index].file] += result.documents
            failed[work[index].file] = failed[work[index].file] || result.diagnostics.contains { $0.severity == .error }
            lastPiece[work[index].file] = index
        }
        for (index, content) in contents.enumerated() where content.failure == nil && documents[index] == 0 && !failed[index] {
            results[lastPiece[index]].diagnostics.append(Diagnostic(.error, "empty-file",
                "the file contains no manifest documents; add a Token, Issuer, Store or Policy, or remove the file",
                at: SourceLocation(file: content.path, line: 1, column: 1)))
        }
        return results
    }

    /// A little less than a short Token document in block style takes (one scope, one delivery, a label or two).
    static let typicalDocumentBytes = 256

    /// Files at least this large are decoded in several pieces at once.
    static let chunkingThreshold = 1 << 20

    func decodeBuffer(_ bytes: UnsafeBufferPointer<UInt8>, file: String, lineOffset: Int = 0) -> FileDecodingResult {
        let reader = YAMLEventReader(input: bytes, maxPendingBytes: limits.maxPendingBytes, lineOffset: lineOffset)
        let decoder = FileDecoder(file: file, stream: EventStream(reader: reader, limits: limits), registry: registry, fieldTable: fieldTable)
        // Room for as many documents as the bytes usually hold, so the arrays rarely grow by copying;
        // pages of capacity left unused are never touched.
        decoder.result.resources.tokens.reserveCapacity(bytes.count / Self.typicalDocumentBytes)
        decoder.result.declared.reserveCapacity(bytes.count / Self.typicalDocumentBytes)
        decoder.decodeAll()
        return decoder.result
    }
}

/// A manifest file's bytes, or why they cannot be decoded.
struct FileContents: Sendable {
    var path: String
    var bytes: [UInt8] = []
    var failure: Failure?

    struct Failure: Sendable {
        var code: String
        var message: String
    }

    init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    init(path: String, limits: DecodingLimits) {
        self.path = path
        switch ManifestFileReader.read(path, limit: limits.maxFileBytes) {
        case .success(let contents):
            bytes = contents
        case .failure(.tooLarge(let size)):
            failure = Failure(code: "file-too-large", message: "the file is \(size >> 20) MiB, more than the \(limits.maxFileBytes >> 20) MiB "
                              + "a manifest file may have; split it into several files")
            return
        case .failure(.notRegular(let kind)):
            failure = Failure(code: "not-a-regular-file", message: "the path is \(kind), not a regular file; tokenctl reads manifests "
                              + "only from regular files; remove it from the manifest paths")
            return
        case .failure(.unreadable):
            failure = Failure(code: "unreadable", message: "cannot read the file; check that it exists and that you may read it")
            return
        }
        if bytes.withUnsafeBufferPointer({ $0.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }) {
            failure = Failure(code: "binary-file", message: "the file contains NUL bytes, so it is not a YAML text file; "
                              + "remove it from the manifest paths")
            bytes = []
            return
        }
        // A UTF-8 byte-order mark (some Windows editors write one) is not part of the text, and editors count no column for it.
        if Self.hasByteOrderMark(bytes) { bytes.removeFirst(3) }
    }

    static func hasByteOrderMark(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
    }
}

extension FileContents {
    /// Reads an open file straight into an uninitialized array (no zero fill, no intermediate `Data` copy), at most
    /// `limit + 1` bytes, so that a file growing while it is read cannot exhaust memory.
    static func read(descriptor: Int32, expectedSize: Int, limit: Int) -> [UInt8]? {
        var failed = false
        var bytes = [UInt8](unsafeUninitializedCapacity: max(expectedSize, 0)) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            while initialized < buffer.count {
                let count = readRetryingOnSignal(descriptor, base + initialized, buffer.count - initialized)
                if count < 0 { failed = true }
                if count <= 0 { break }
                initialized += count
            }
        }
        guard !failed else { return nil }
        guard bytes.count == expectedSize else { return bytes }
        // The file may have grown since its size was read: take the rest too, up to just past the limit.
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= limit {
            let count = chunk.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress.map { readRetryingOnSignal(descriptor, $0, buffer.count) } ?? -1
            }
            if count < 0 { return nil }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
        return bytes
    }

    /// `read(2)`, repeated when a signal interrupts it before any byte arrives.
    private static func readRetryingOnSignal(_ descriptor: Int32, _ buffer: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int {
        while true {
            let result = Glibc.read(descriptor, buffer, count)
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }
}

/// Cuts a YAML stream at document markers (`---` at the start of a line), which YAML forbids inside
/// any scalar, so that every piece is a stream of whole documents.
enum DocumentChunks {
    static func split(_ bytes: [UInt8], into pieces: Int) -> [(range: Range<Int>, lineOffset: Int)] {
        guard pieces > 1, bytes.count > 0 else { return [(0..<bytes.count, 0)] }
        var chunks: [(range: Range<Int>, lineOffset: Int)] = []
        let target = bytes.count / pieces
        var start = 0
        var line = 0
        var lineAtStart = 0
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var index = 0
            // memchr jumps from line to line, so one huge line costs a single call.
            while index < buffer.count, let found = memchr(base + index, 10, buffer.count - index) {
                let newline = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                line += 1
                let next = newline + 1
                if next - start >= target, isDocumentMarker(buffer, at: next) {
                    chunks.append((start..<next, lineAtStart))
                    start = next
                    lineAtStart = line
                }
                index = next
            }
        }
        chunks.append((start..<bytes.count, lineAtStart))
        return chunks
    }

    private static func isDocumentMarker(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        guard index + 3 <= bytes.count, bytes[index] == 45, bytes[index + 1] == 45, bytes[index + 2] == 45 else { return false }
        guard index + 3 < bytes.count else { return true }
        let after = bytes[index + 3]
        return after == 10 || after == 13 || after == 32 || after == 9
    }
}
