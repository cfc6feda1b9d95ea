import Synchronization

/// One result slot per concurrent worker (e.g. per `DispatchQueue.concurrentPerform` iteration), collected in order.
///
/// ```swift
/// let slots = ConcurrentSlots<[Diagnostic]>(count: 4, initial: [])
/// DispatchQueue.concurrentPerform(iterations: 4) { slots.set($0, work($0)) }
/// let results = slots.take()
/// ```
package final class ConcurrentSlots<Value: Sendable>: Sendable {
    private let storage: Mutex<[Value]>

    /// Creates `count` slots holding `initial`.
    package init(count: Int, initial: Value) {
        storage = Mutex(Array(repeating: initial, count: count))
    }

    /// Stores a worker's result.
    package func set(_ index: Int, _ value: Value) {
        storage.withLock { $0[index] = value }
    }

    /// Every slot, in index order; the slots are emptied, so large results are not held twice.
    package func take() -> [Value] {
        storage.withLock { slots in
            let values = slots
            slots = []
            return values
        }
    }
}
