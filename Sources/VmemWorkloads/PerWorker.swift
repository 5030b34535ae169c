/// One value per benchmark worker, each in memory of its own, so that a
/// worker writes its slot without touching a shared Swift array (two
/// threads writing into one array race on its buffer).
final class PerWorker<T>: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<T>
    let count: Int

    init(_ initial: T, count: Int = 2) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: initial, count: count)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    subscript(i: Int) -> T {
        get { slots[i] }
        set { slots[i] = newValue }
    }

    var all: [T] { Array(UnsafeBufferPointer(start: slots, count: count)) }
}
