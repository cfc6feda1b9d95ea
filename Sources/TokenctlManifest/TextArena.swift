#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Copies of event texts that stay at a fixed address until `removeAll()`.
///
/// A bump allocator in blocks: one document's texts take a few hundred bytes, so the first block is reused
/// document after document while it is still in cache, and libyaml gets its own buffers back at once.
struct TextArena: ~Copyable {
    private static let blockSize = 64 << 10
    /// Every block; the first one is kept across `removeAll()`.
    private var blocks: [UnsafeMutableRawPointer] = []
    private var next: UnsafeMutablePointer<UInt8>?
    private var remaining = 0

    init() {}

    deinit {
        for block in blocks { free(block) }
    }

    /// A copy of `count` bytes at `source`.
    mutating func copy(_ source: UnsafePointer<UInt8>, count: Int) -> UnsafeBufferPointer<UInt8> {
        guard count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        if count > remaining { addBlock(atLeast: count) }
        guard let destination = next else { return UnsafeBufferPointer(start: nil, count: 0) }
        destination.update(from: source, count: count)
        next = destination + count
        remaining -= count
        return UnsafeBufferPointer(start: destination, count: count)
    }

    /// Frees every copy at once (all but the first block go back to the allocator).
    mutating func removeAll() {
        #if DEBUG
        // Debug builds return every block, so that the address sanitizer catches a text read after its document.
        for block in blocks { free(block) }
        blocks.removeAll()
        next = nil
        remaining = 0
        return
        #else
        guard let first = blocks.first else { return }
        for block in blocks.dropFirst() { free(block) }
        blocks.removeSubrange(1...)
        next = first.assumingMemoryBound(to: UInt8.self)
        remaining = Self.blockSize
        #endif
    }

    private mutating func addBlock(atLeast count: Int) {
        let size = max(Self.blockSize, count)
        guard let block = malloc(size) else { fatalError("out of memory reading a manifest") }
        blocks.append(block)
        next = block.assumingMemoryBound(to: UInt8.self)
        remaining = size
    }
}
