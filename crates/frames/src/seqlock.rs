//! The seqlock protocol of one slot, written once over a small trait so that the same code
//! runs on the shared mapping (std atomics) and inside the loom model checker
//! (tests/loom.rs).
//!
//! The form follows H.-J. Boehm, "Can seqlocks get along with programming language memory
//! models?" (MSPC 2012), which is also the form of the Linux kernel's seqcount_t
//! (Documentation/locking/seqlock.rst), expressed in C11/Rust orderings:
//!
//! ```text
//! writer                                  reader
//!   s = seq (odd)        relaxed store      s1 = seq          relaxed load
//!   fence(Release)                          fence(Acquire)
//!   data = ...           relaxed stores     copy = data       relaxed loads
//!   seq = s + 1 (even)   release store      fence(Acquire)
//!                                           s2 = seq          relaxed load
//!                                           accept iff s1 == s2 and s1 is even
//! ```
//!
//! Why each ordering:
//! - The writer's release fence after the odd store: if a reader's data load sees any byte of
//!   the new frame, the reader's acquire fence after its copy synchronizes with this fence, so
//!   its second sequence load sees the odd value (or later) and rejects the copy.
//! - The writer's release store of the even value pairs with the reader's first load plus
//!   acquire fence: a reader that starts from an even value sees all the data written before it.
//! - The reader uses relaxed loads plus explicit acquire fences rather than acquire loads
//!   because the reader's mapping is read-only, and the standard library guarantees atomic
//!   loads on read-only memory only for relaxed loads of at most register width (see
//!   "Atomic accesses to read-only memory" in core::sync::atomic). On x86_64 both forms are a
//!   plain `mov`; the fences cost nothing there and one `dmb ishld` each on arm64.

use std::sync::atomic::Ordering;

use crate::error::ReadError;

/// A 64-bit sequence word and the fence of the same memory model.
pub trait SequenceWord {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
    /// A fence in the memory model this word lives in (std or loom).
    fn fence(order: Ordering);
}

impl SequenceWord for std::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        std::sync::atomic::AtomicU64::store(self, value, order)
    }
    fn fence(order: Ordering) {
        std::sync::atomic::fence(order)
    }
}

/// True for a sequence that names a published frame: even, and not the initial 0.
pub fn is_published(sequence: u64) -> bool {
    sequence != 0 && sequence % 2 == 0
}

/// Marks the slot as being written and returns the odd sequence to hand to [`end_write`].
/// Called only by the slot's single writer. A slot left odd by an abandoned write stays odd.
pub fn begin_write<W: SequenceWord>(sequence: &W) -> u64 {
    // Relaxed: the writer is the only one storing this word, so it reads its own last store.
    let current = sequence.load(Ordering::Relaxed);
    let odd = current | 1;
    // Relaxed store, then the release fence orders it before every data store that follows
    // (Boehm, section 5): a reader that sees new data is guaranteed to see this odd value.
    sequence.store(odd, Ordering::Relaxed);
    W::fence(Ordering::Release);
    odd
}

/// Marks the slot stable again after its data and record fields are written.
pub fn end_write<W: SequenceWord>(sequence: &W, odd: u64) {
    debug_assert!(odd % 2 == 1);
    // Release: every data and record store above happens-before a reader's acquire fence that
    // follows its load of this even value.
    sequence.store(odd.wrapping_add(1), Ordering::Release);
}

/// First step of a read: the sequence as it was before the copy.
pub fn begin_read<W: SequenceWord>(sequence: &W) -> u64 {
    // Relaxed load plus acquire fence (not an acquire load: the mapping may be read-only, see
    // the module comment). Pairs with end_write's release store: the data loads that follow
    // see everything written before that sequence value was published.
    let begun = sequence.load(Ordering::Relaxed);
    W::fence(Ordering::Acquire);
    begun
}

/// Checks a sequence read by [`begin_read`] against the frame the caller asked for, before
/// copying anything. A different or odd value means that frame is gone: lapped.
pub fn check_expected(begun: u64, expected: u64) -> Result<(), ReadError> {
    if !is_published(expected) {
        return Err(ReadError::InvalidSequence { sequence: expected });
    }
    if begun != expected {
        return Err(ReadError::Lapped);
    }
    Ok(())
}

/// Last step of a read: accepts the copy only if the sequence did not move during it.
pub fn end_read<W: SequenceWord>(sequence: &W, begun: u64) -> Result<(), ReadError> {
    // Acquire fence before the re-read: the data loads above cannot be reordered after the
    // second sequence load, and if any of them saw a byte of a newer frame, this fence
    // synchronizes with the writer's release fence in begin_write, so the load below sees the
    // odd (or a later) value.
    W::fence(Ordering::Acquire);
    let now = sequence.load(Ordering::Relaxed);
    if now == begun {
        Ok(())
    } else {
        Err(ReadError::Torn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    // Relaxed loads and stores in these tests: one thread, so ordering is irrelevant.
    #[test]
    fn sequence_steps_table() {
        let seq = AtomicU64::new(0);
        // (action, sequence after)
        let odd = begin_write(&seq);
        assert_eq!((odd, seq.load(Ordering::Relaxed)), (1, 1));
        end_write(&seq, odd);
        assert_eq!(seq.load(Ordering::Relaxed), 2);
        // An abandoned write leaves the slot odd; the next write reuses the odd value.
        let odd = begin_write(&seq);
        assert_eq!(odd, 3);
        assert_eq!(begin_write(&seq), 3);
        end_write(&seq, 3);
        assert_eq!(seq.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn read_checks_table() {
        // (begun, expected) -> result
        let table = [
            ((4, 4), Ok(())),
            ((6, 4), Err(ReadError::Lapped)),
            ((5, 4), Err(ReadError::Lapped)),
            ((0, 0), Err(ReadError::InvalidSequence { sequence: 0 })),
            ((3, 3), Err(ReadError::InvalidSequence { sequence: 3 })),
        ];
        for ((begun, expected), result) in table {
            assert_eq!(
                check_expected(begun, expected),
                result,
                "{begun} {expected}"
            );
        }
        let seq = AtomicU64::new(4);
        let begun = begin_read(&seq);
        assert_eq!(end_read(&seq, begun), Ok(()));
        seq.store(5, Ordering::Relaxed);
        assert_eq!(end_read(&seq, begun), Err(ReadError::Torn));
    }
}
