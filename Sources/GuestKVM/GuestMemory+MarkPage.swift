import GuestMemory

extension GuestMemory {
    /// Marks one guest page dirty in the VMM bitmap (the one-word case of
    /// `markDirty(firstGuestPage:words:)`); false when no mapping holds it.
    @discardableResult
    func markDirty(guestPage page: UInt64) -> Bool {
        var word: UInt64 = 1
        return withUnsafePointer(to: &word) {
            markDirty(firstGuestPage: page, words: UnsafeBufferPointer(start: $0, count: 1)) == 1
        }
    }
}
