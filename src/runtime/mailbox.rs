//! Bounded single-producer single-consumer mailboxes between shards.
//!
//! Shards share nothing; they pass messages (DESIGN.md §3). A mailbox is a fixed ring
//! (`crossbeam_queue::ArrayQueue`, allocated once) with exactly one sending and one receiving
//! shard. It never blocks and never grows: a full mailbox hands the item back to the sender, whose
//! loop decides what backpressure means (retry next iteration, shed, slow its clients).
//!
//! # Waking the receiver
//!
//! After every successful push the sender calls [`Doorbell::notify`] on the receiver's doorbell,
//! which rings (one `write(2)`) only if the receiver declared itself parked. The memory-ordering
//! argument, in full:
//!
//! - The push publishes the item with a release store (the slot's stamp) after a SeqCst CAS of the
//!   queue's tail; both are sequenced before the SeqCst fence inside `notify`, which is followed by
//!   the load of the receiver's `parked` flag.
//! - The receiver stores `parked = true`, issues a SeqCst fence ([`Doorbell::begin_park`]) and then
//!   checks its mailboxes with [`MailboxReceiver::is_empty`] (SeqCst loads of head and tail).
//! - The two fences are totally ordered. If the sender's comes first, the receiver's check (after
//!   its own fence) observes the new tail, finds the mailbox non-empty and does not sleep. If the
//!   receiver's comes first, the sender's flag load observes `true` and it rings. So an item is never
//!   left in a mailbox whose receiver sleeps until its park timeout.
//!
//! While the receiver runs, a send costs a CAS, a release store, a fence and a load: no syscall.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::Doorbell;

/// The largest mailbox capacity accepted: a bound on per-mailbox memory (items are preallocated).
pub const MAILBOX_CAPACITY_MAX: usize = 1 << 20;

/// Why a mailbox could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The configured capacity is zero, not a power of two, or above [`MAILBOX_CAPACITY_MAX`].
    #[error(
        "mailbox capacity {capacity} is invalid: it must be a power of two between 1 and {max} \
         (e.g. 1024); fix the mailbox capacity in the configuration",
        max = MAILBOX_CAPACITY_MAX
    )]
    Capacity {
        /// The rejected capacity.
        capacity: usize,
    },
}

/// A send that found the mailbox full; carries the item back so nothing is lost.
pub struct Full<T> {
    /// The item that was not sent.
    pub item: T,
    /// The mailbox's capacity, for the error message.
    pub capacity: usize,
}

impl<T> std::fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Full")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for Full<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mailbox full ({} items queued); the receiving shard is behind — retry after it drains",
            self.capacity
        )
    }
}

impl<T> std::error::Error for Full<T> {}

/// Creates a mailbox holding at most `capacity` items whose receiver parks on `receiver_doorbell`.
///
/// `capacity` must be a power of two in `1..=MAILBOX_CAPACITY_MAX`. All memory is allocated here;
/// neither end allocates afterwards.
pub fn mailbox<T>(
    capacity: usize,
    receiver_doorbell: Arc<Doorbell>,
) -> Result<(MailboxSender<T>, MailboxReceiver<T>), MailboxError> {
    if !capacity.is_power_of_two() || capacity > MAILBOX_CAPACITY_MAX {
        return Err(MailboxError::Capacity { capacity });
    }
    let queue = Arc::new(ArrayQueue::new(capacity));
    let sender = MailboxSender {
        queue: Arc::clone(&queue),
        doorbell: Arc::clone(&receiver_doorbell),
    };
    let receiver = MailboxReceiver {
        queue,
        doorbell: receiver_doorbell,
    };
    Ok((sender, receiver))
}

/// The sending end. Not `Clone`: one producer per mailbox; `&mut self` keeps it on one thread at a
/// time.
#[derive(Debug)]
pub struct MailboxSender<T> {
    queue: Arc<ArrayQueue<T>>,
    doorbell: Arc<Doorbell>,
}

impl<T> MailboxSender<T> {
    /// Enqueues `item` without blocking, waking the receiver if it is parked; on a full mailbox
    /// returns the item in [`Full`] and changes nothing.
    pub fn try_send(&mut self, item: T) -> Result<(), Full<T>> {
        match self.queue.push(item) {
            Ok(()) => {
                self.doorbell.notify();
                Ok(())
            }
            Err(item) => Err(Full {
                item,
                capacity: self.queue.capacity(),
            }),
        }
    }

    /// The fixed number of items the mailbox holds.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

/// The receiving end. Not `Clone`: one consumer per mailbox.
#[derive(Debug)]
pub struct MailboxReceiver<T> {
    queue: Arc<ArrayQueue<T>>,
    doorbell: Arc<Doorbell>,
}

impl<T> MailboxReceiver<T> {
    /// Takes the oldest item, if any.
    pub fn try_recv(&mut self) -> Option<T> {
        self.queue.pop()
    }

    /// Hands up to `max_items` queued items, oldest first, to `handle`; returns how many. Bounded so
    /// one busy peer cannot monopolise an iteration of the receiver's loop.
    pub fn drain(&mut self, max_items: usize, mut handle: impl FnMut(T)) -> usize {
        let mut taken = 0;
        while taken < max_items {
            let Some(item) = self.queue.pop() else { break };
            handle(item);
            taken += 1;
        }
        debug_assert!(taken <= max_items);
        taken
    }

    /// Whether nothing is queued. SeqCst loads: this is the re-check of the park protocol (see the
    /// module documentation), valid after [`Doorbell::begin_park`].
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many items are queued right now (racy: the sender keeps going).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The doorbell this mailbox rings, i.e. the receiving shard's.
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bell() -> Arc<Doorbell> {
        Arc::new(Doorbell::new().expect("eventfd"))
    }

    #[test]
    fn capacity_must_be_a_power_of_two_within_bounds() {
        for capacity in [0, 3, 1000, MAILBOX_CAPACITY_MAX * 2] {
            let error = mailbox::<u32>(capacity, bell()).expect_err("invalid capacity");
            assert_eq!(error, MailboxError::Capacity { capacity });
            assert!(error.to_string().contains(&capacity.to_string()));
        }
        for capacity in [1, 2, 1024, MAILBOX_CAPACITY_MAX] {
            let (tx, _rx) = mailbox::<u32>(capacity, bell()).expect("valid capacity");
            assert_eq!(tx.capacity(), capacity);
        }
    }

    #[test]
    fn full_mailbox_returns_the_item_and_keeps_order() {
        let (mut tx, mut rx) = mailbox::<u32>(4, bell()).expect("mailbox");
        for i in 0..4 {
            tx.try_send(i).expect("room");
        }
        let full = tx.try_send(99).expect_err("fifth item must not fit");
        assert_eq!(full.item, 99);
        assert_eq!(full.capacity, 4);
        assert_eq!(rx.len(), 4, "a refused send must not grow the mailbox");
        let mut got = Vec::new();
        assert_eq!(rx.drain(usize::MAX, |item| got.push(item)), 4);
        assert_eq!(got, [0, 1, 2, 3]);
        tx.try_send(4).expect("room again after draining");
        assert_eq!(rx.try_recv(), Some(4));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn drain_takes_at_most_the_batch_size() {
        let (mut tx, mut rx) = mailbox::<u32>(8, bell()).expect("mailbox");
        for i in 0..7 {
            tx.try_send(i).expect("room");
        }
        let mut got = Vec::new();
        assert_eq!(rx.drain(3, |item| got.push(item)), 3);
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(rx.len(), 4);
    }

    #[test]
    fn send_to_a_running_receiver_makes_no_syscall() {
        let bell = bell();
        let (mut tx, _rx) = mailbox::<u32>(8, Arc::clone(&bell)).expect("mailbox");
        tx.try_send(1).expect("room");
        assert_eq!(
            bell.drain(),
            0,
            "the eventfd must not be written while the receiver runs"
        );
    }

    #[test]
    fn send_to_a_parked_receiver_rings_its_doorbell() {
        let bell = bell();
        let (mut tx, rx) = mailbox::<u32>(8, Arc::clone(&bell)).expect("mailbox");
        let parked = bell.begin_park();
        assert!(rx.is_empty(), "re-check before sleeping finds nothing");
        tx.try_send(1).expect("room");
        drop(parked);
        assert_eq!(bell.drain(), 1);
        assert!(!rx.is_empty());
    }

    #[test]
    fn items_cross_threads_in_order_without_loss_or_lost_wakeups() {
        const ITEMS: u64 = 200_000;
        let bell = bell();
        let (mut tx, mut rx) = mailbox::<u64>(16, Arc::clone(&bell)).expect("mailbox");
        let producer = std::thread::spawn(move || {
            for i in 0..ITEMS {
                let mut item = i;
                while let Err(full) = tx.try_send(item) {
                    item = full.item;
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u64;
        let mut timed_out_parks = 0;
        while expected < ITEMS {
            let taken = rx.drain(64, |item| {
                assert_eq!(item, expected, "FIFO order broken");
                expected += 1;
            });
            if taken == 0 {
                // Park like a shard: every item must wake us long before this 10 s timeout.
                let outcome = bell.park(10_000_000_000, || !rx.is_empty()).expect("park");
                if outcome == crate::runtime::ParkOutcome::TimedOut {
                    timed_out_parks += 1;
                }
            }
        }
        producer.join().expect("producer thread");
        assert_eq!(rx.try_recv(), None);
        assert_eq!(
            timed_out_parks, 0,
            "a wake-up was lost: the receiver slept through a send"
        );
    }
}
