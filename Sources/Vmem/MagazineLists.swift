/// One kind of the depot's magazines (full or empty) on a list per CPU slot,
/// with their total count: what ``Depot`` keeps twice.
///
/// A list is a stack linked through ``Magazine/next``: a push and a pop touch
/// the head only. The owner holds the lock that guards it (the depot's) and
/// frees it with ``deallocate()``.
@usableFromInline
struct MagazineLists {
    @usableFromInline let heads: UnsafeMutablePointer<Magazine?>
    /// CPU slots: the number of lists.
    @usableFromInline let listCount: Int
    /// Magazines on all lists.
    @usableFromInline var count = 0

    @usableFromInline
    init(listCount: Int) {
        self.listCount = listCount
        heads = .allocate(capacity: listCount)
        heads.initialize(repeating: nil, count: listCount)
    }

    /// Frees the lists and any magazine still on them (the owner drains
    /// first; what is left belongs to a cache dropped without a drain).
    func deallocate() {
        for i in 0..<listCount {
            var list = heads[i]
            while let m = list { list = m.next; m.deallocate() }
        }
        heads.deallocate()
    }

    /// The head of list `i`, in list order (verify walks it).
    func head(_ i: Int) -> Magazine? { heads[i] }

    /// The head of list `i`, taken off it; nil when that list is empty.
    @inlinable @inline(__always)
    mutating func pop(fromList i: Int) -> Magazine? {
        guard let m = heads[i] else { return nil }
        heads[i] = m.next
        count &-= 1
        return m
    }

    /// A magazine from any list, the lowest-numbered first; nil when all are empty.
    @usableFromInline
    mutating func popAny() -> Magazine? {
        if count == 0 { return nil }
        for i in 0..<listCount {
            if let m = pop(fromList: i) { return m }
        }
        return nil
    }

    /// Puts `m` on list `i`.
    @inlinable @inline(__always)
    mutating func push(_ m: Magazine, onto i: Int) {
        m.next = heads[i]
        heads[i] = m
        count &+= 1
    }
}
