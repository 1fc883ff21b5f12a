//! Model check of the seqlock protocol with loom: every interleaving (and every permitted
//! weak-memory outcome loom models) of a writer publishing frames while a reader reads.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p frames --release --test loom`
//! (about a second). Without `--cfg loom` this file compiles to nothing.
//!
//! The protocol steps are the crate's own `frames::seqlock` functions, the same code the
//! writer and reader run on the shared mapping; only the atomics are loom's. The data of a
//! slot is modelled as two words, written and read with relaxed atomics exactly as the
//! writer's stores and the reader's `copy_relaxed` do.
//!
//! Writer and reader both run in spawned threads: loom 0.7 did not explore schedules where
//! the model's main thread is preempted before its first operation, so a reader placed there
//! never saw a half-written slot (found by listing the outcomes it explored).
#![cfg(loom)]

use std::sync::atomic::Ordering;

use frames::seqlock::{begin_read, begin_write, check_expected, end_read, end_write, SequenceWord};
use frames::ReadError;
use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;

/// A loom atomic as a seqlock sequence word.
struct LoomWord(AtomicU64);

impl SequenceWord for LoomWord {
    // The orderings are the caller's (frames::seqlock), passed through unchanged.
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order)
    }
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order)
    }
}

/// One slot: a sequence and a two-word frame. A frame with id n is the words (n, n); a read
/// that returns two different words mixed two frames.
struct Slot {
    sequence: LoomWord,
    words: [AtomicU64; 2],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            sequence: LoomWord(AtomicU64::new(0)),
            words: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn publish(&self, frame_id: u64) {
        let odd = begin_write(&self.sequence);
        // Relaxed data stores, as the writer's plain stores into the slot: their ordering
        // comes from the seqlock's fences, which is what this model checks.
        for word in &self.words {
            word.store(frame_id, Ordering::Relaxed);
        }
        end_write(&self.sequence, odd);
    }

    /// The reader's latest-frame path: read whatever stable frame is there.
    fn read_any(&self) -> Result<(u64, [u64; 2]), ReadError> {
        let begun = begin_read(&self.sequence);
        if begun % 2 == 1 || begun == 0 {
            return Err(ReadError::Torn);
        }
        // Relaxed data loads, as in the reader's copy_relaxed.
        let copy = [
            self.words[0].load(Ordering::Relaxed),
            self.words[1].load(Ordering::Relaxed),
        ];
        end_read(&self.sequence, begun)?;
        Ok((begun, copy))
    }

    /// The frame-reference path: read the frame that had sequence `expected`.
    fn read_expected(&self, expected: u64) -> Result<[u64; 2], ReadError> {
        let begun = begin_read(&self.sequence);
        check_expected(begun, expected)?;
        // Relaxed data loads, as in the reader's copy_relaxed.
        let copy = [
            self.words[0].load(Ordering::Relaxed),
            self.words[1].load(Ordering::Relaxed),
        ];
        end_read(&self.sequence, begun)?;
        Ok(copy)
    }
}

/// Sequence 2k names frame k on a slot written only by this test's writer.
fn frame_of(sequence: u64) -> u64 {
    sequence / 2
}

#[test]
fn reader_never_accepts_a_torn_frame() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        let writer_slot = slot.clone();
        let writer = loom::thread::spawn(move || {
            writer_slot.publish(1);
            writer_slot.publish(2);
        });
        let reader = loom::thread::spawn(move || {
            if let Ok((sequence, words)) = slot.read_any() {
                let frame = frame_of(sequence);
                assert_eq!(
                    words,
                    [frame, frame],
                    "accepted a torn or mislabelled frame"
                );
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
    });
}

#[test]
fn reference_read_accepts_only_the_named_frame() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        slot.publish(1);
        let writer_slot = slot.clone();
        let writer = loom::thread::spawn(move || {
            writer_slot.publish(2);
        });
        let reader_slot = slot.clone();
        let reader = loom::thread::spawn(move || {
            // Frame 1 has sequence 2. Whatever the interleaving, an accepted read is frame 1.
            match reader_slot.read_expected(2) {
                Ok(words) => assert_eq!(words, [1, 1]),
                Err(ReadError::Torn) | Err(ReadError::Lapped) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
        // After the writer is done, the old reference is lapped and the new one reads.
        assert_eq!(slot.read_expected(2), Err(ReadError::Lapped));
        assert_eq!(slot.read_expected(4), Ok([2, 2]));
    });
}

/// The model has teeth: the same reader against a writer that forgets the release fence
/// after marking the slot odd, and stores the even value relaxed, must be caught.
#[test]
#[should_panic(expected = "accepted a torn or mislabelled frame")]
fn a_writer_without_its_fences_is_caught() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        let writer_slot = slot.clone();
        let writer = loom::thread::spawn(move || {
            for frame_id in 1..=2u64 {
                // Deliberately all Relaxed and no fences: the bug this test must catch.
                let odd = writer_slot.sequence.load(Ordering::Relaxed) | 1;
                writer_slot.sequence.store(odd, Ordering::Relaxed);
                for word in &writer_slot.words {
                    word.store(frame_id, Ordering::Relaxed);
                }
                writer_slot.sequence.store(odd + 1, Ordering::Relaxed);
            }
        });
        let reader = loom::thread::spawn(move || {
            if let Ok((sequence, words)) = slot.read_any() {
                let frame = frame_of(sequence);
                assert_eq!(
                    words,
                    [frame, frame],
                    "accepted a torn or mislabelled frame"
                );
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
    });
}

/// The release fence after the odd store is needed: without it, a reader can copy bytes of
/// the new frame and still re-read the old even sequence.
#[test]
#[should_panic(expected = "accepted a torn or mislabelled frame")]
fn a_writer_without_the_fence_after_the_odd_store_is_caught() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        let writer_slot = slot.clone();
        let writer = loom::thread::spawn(move || {
            for frame_id in 1..=2u64 {
                // Deliberately no release fence after the odd store: the bug to catch.
                let odd = writer_slot.sequence.load(Ordering::Relaxed) | 1;
                writer_slot.sequence.store(odd, Ordering::Relaxed);
                for word in &writer_slot.words {
                    word.store(frame_id, Ordering::Relaxed);
                }
                end_write(&writer_slot.sequence, odd);
            }
        });
        let reader = loom::thread::spawn(move || {
            if let Ok((sequence, words)) = slot.read_any() {
                let frame = frame_of(sequence);
                assert_eq!(
                    words,
                    [frame, frame],
                    "accepted a torn or mislabelled frame"
                );
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
    });
}

/// The reader's acquire fence before its second sequence load is needed too.
#[test]
#[should_panic(expected = "accepted a torn or mislabelled frame")]
fn a_reader_without_its_closing_fence_is_caught() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        let writer_slot = slot.clone();
        let writer = loom::thread::spawn(move || {
            writer_slot.publish(1);
            writer_slot.publish(2);
        });
        let reader = loom::thread::spawn(move || {
            let begun = begin_read(&slot.sequence);
            if begun % 2 == 1 || begun == 0 {
                return;
            }
            // Deliberately no acquire fence between the copy and the re-read: the bug to catch.
            let words = [
                slot.words[0].load(Ordering::Relaxed),
                slot.words[1].load(Ordering::Relaxed),
            ];
            if slot.sequence.load(Ordering::Relaxed) == begun {
                let frame = frame_of(begun);
                assert_eq!(
                    words,
                    [frame, frame],
                    "accepted a torn or mislabelled frame"
                );
            }
        });
        writer.join().unwrap();
        reader.join().unwrap();
    });
}
