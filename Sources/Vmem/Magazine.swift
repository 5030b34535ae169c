import Synchronization

/// A magazine: a fixed-capacity stack of objects ("rounds"), the unit that
/// the quantum cache moves between a CPU and the depot (Bonwick & Adams
/// 2001, §3).
///
/// A magazine is one buffer of `1 + 2 * capacity` words, in whole cache lines
/// of its own, allocated when the cache first needs it and then recycled
/// between the CPUs and the depot until a reap or drain frees it; the steady
/// state therefore allocates nothing. Word 0 links the magazine into one of the depot's
/// lists; each round takes two words: the object's address and, in a checked
/// cache, where its user byte is (``SlabRecord/userState(_:)``), so that
/// handing the object out sets that byte without finding the slab again.
/// That pointer stays good while the round sits in a magazine: a slab with an
/// object in a magazine is not wholly free, so its record is not released.
/// The magazine does not know how many rounds it holds: whoever owns it does
/// (a CPU keeps a count per magazine, and the depot only keeps full
/// magazines on its full list and empty ones on its empty list), exactly as
/// in kmem, so a transfer between layers moves one pointer and never touches
/// the rounds.
///
/// `Magazine` is a handle (a pointer), so `Magazine?` is one word with `nil`
/// as the null pointer.
@usableFromInline
struct Magazine {
    @usableFromInline let storage: UnsafeMutablePointer<UInt64>

    @inlinable @inline(__always)
    init(storage: UnsafeMutablePointer<UInt64>) { self.storage = storage }

    /// A fresh magazine for `capacity` rounds, unlinked.
    @usableFromInline
    static func allocate(capacity: Int) -> Magazine {
        // Whole cache lines of its own: two CPUs' magazines that malloc put
        // side by side would otherwise share a line, and writing rounds near
        // the boundary would bounce it between the CPUs.
        let words = 1 + 2 * capacity
        let bytes = (words * 8 + 63) & ~63
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let storage = raw.bindMemory(to: UInt64.self, capacity: bytes / 8)
        storage.initialize(repeating: 0, count: bytes / 8)
        return Magazine(storage: storage)
    }

    /// Frees the buffer; the handle must not be used afterwards.
    @usableFromInline
    func deallocate() { UnsafeMutableRawPointer(storage).deallocate() }

    /// The address of round `index` (0-based; the owner keeps it below its
    /// round count).
    @inlinable
    subscript(index: Int) -> UInt64 {
        @inline(__always) get { storage[1 &+ 2 &* index] }
    }

    /// The user byte of round `index`'s object; nil in an unchecked cache.
    @inlinable @inline(__always)
    func userState(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt8>>? {
        UnsafeMutablePointer(bitPattern: UInt(truncatingIfNeeded: storage[2 &+ 2 &* index]))
    }

    /// Puts `address`, whose user byte is `state` (nil when unchecked), in
    /// round `index`.
    @inlinable @inline(__always)
    func setRound(_ index: Int, address: UInt64, state: UnsafeMutablePointer<Atomic<UInt8>>?) {
        storage[1 &+ 2 &* index] = address
        storage[2 &+ 2 &* index] = UInt64(UInt(bitPattern: state))
    }

    /// The next magazine on the depot list this one sits on.
    @inlinable
    var next: Magazine? {
        get { UnsafeMutablePointer(bitPattern: UInt(storage[0])).map(Magazine.init(storage:)) }
        nonmutating set { storage[0] = UInt64(UInt(bitPattern: newValue?.storage)) }
    }
}

/// How many rounds a quantum-cache magazine holds.
///
/// kmem picks the magazine size per cache from the object size and grows it
/// when the depot lock is contended. Quantum-cache objects are all small
/// (at most 16 quanta), so one fixed size serves: 31 rounds of two words and
/// the link word make 504 bytes, eight cache lines, and a CPU then goes to
/// the depot at most once every 31 allocations or frees, which keeps the
/// depot lock cold even when every CPU works on the same cache.
@usableFromInline
enum MagazineSize {
    @usableFromInline static let defaultRounds = 31
    /// Bounds accepted by ``QuantumCache/init(objectSize:slabSize:cpuCount:magazineRounds:checked:backend:)``.
    @usableFromInline static let minimumRounds = 1
    @usableFromInline static let maximumRounds = 1024
}
