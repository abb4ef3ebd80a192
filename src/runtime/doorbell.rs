//! An eventfd doorbell: how a producer wakes a shard that has parked.
//!
//! A shard that runs out of work spins for a while and then parks (DESIGN.md §3). Parking must end
//! as soon as another shard hands it work through a mailbox, without making every send a syscall.
//! The doorbell pairs an eventfd (what the parked thread sleeps on) with a `parked` flag (what a
//! producer checks before it pays for a `write(2)`):
//!
//! ```text
//!  producer (any thread)                 parker (the shard that owns the doorbell)
//!  1. publish the work (queue push)      1. parked := true           (begin_park)
//!  2. fence(SeqCst)                      2. fence(SeqCst)
//!  3. if parked: ring                    3. re-check every input; if any: do not sleep
//!                                        4. sleep on the eventfd (with a timeout)
//!                                        5. parked := false          (ParkGuard drop)
//! ```
//!
//! This is Dekker's store-buffer pattern. Each side stores, issues a sequentially consistent fence
//! and then loads what the other side stored. All SeqCst fences form one total order, so one of the
//! two fences comes first; the thread whose fence comes second observes the other thread's store
//! (C++20 [atomics.order] p6, which Rust adopts). Hence either the producer sees `parked == true`
//! and rings, or the parker's re-check sees the published work and does not sleep. A wake-up can be
//! spurious (the eventfd stays readable after a ring that raced with an un-park); that costs one
//! extra loop iteration and the next park drains it. A lost wake-up cannot happen.
//!
//! Kernel-fd transports park in their own kernel wait (io_uring `submit_and_wait` with a timeout);
//! they arm a poll on [`Doorbell::fd`] in that wait so mailboxes end it too, and follow the same
//! protocol with [`Doorbell::begin_park`] — see [`ShardTask`](super::ShardTask).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

/// Why a doorbell could not be created or waited on.
#[derive(Debug, thiserror::Error)]
pub enum DoorbellError {
    /// `eventfd(2)` failed, almost always for lack of file descriptors.
    #[error(
        "cannot create a shard doorbell: eventfd failed: {0}; \
         if it says too many open files, raise the limit (ulimit -n)"
    )]
    Create(#[source] std::io::Error),
    /// `ppoll(2)` on the eventfd failed with something other than an interruption.
    #[error("waiting on the shard doorbell (eventfd {fd}) failed: {source}")]
    Wait {
        /// The eventfd's descriptor number.
        fd: i32,
        /// What the kernel said.
        source: std::io::Error,
    },
}

/// How a [`Doorbell::park`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkOutcome {
    /// Input was already pending after the parked flag was raised, so the thread did not sleep.
    Pending,
    /// Someone rang while the thread slept (or before, since the last drain).
    Rung,
    /// The timeout passed without a ring (or the sleep was interrupted by a signal).
    TimedOut,
}

/// The flag producers read after every publish: on its own cache line so the parker's writes to
/// nearby data do not bounce the line producers poll.
#[repr(align(128))]
#[derive(Debug)]
struct ParkedFlag(AtomicBool);

/// A shard's doorbell: an eventfd plus the flag that says the owner is (about to be) asleep.
///
/// Share it as `Arc<Doorbell>`: the owning shard parks on it, every producer that feeds the shard
/// holds a clone and calls [`notify`](Self::notify) after publishing.
#[derive(Debug)]
pub struct Doorbell {
    parked: ParkedFlag,
    fd: OwnedFd,
}

impl Doorbell {
    /// Creates a doorbell (a non-blocking, close-on-exec eventfd) that nobody is parked on.
    pub fn new() -> Result<Self, DoorbellError> {
        // SAFETY: eventfd has no memory arguments; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(DoorbellError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self {
            parked: ParkedFlag(AtomicBool::new(false)),
            fd,
        })
    }

    /// The eventfd, for transports that fold the doorbell into their own kernel wait (e.g. an
    /// io_uring multishot `POLL_ADD` for `POLLIN`). After such a wait reports the fd readable, call
    /// [`drain`](Self::drain) or the fd stays readable and the next wait returns at once.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Wakes the owner unconditionally: one `write(2)` of 1 to the eventfd.
    ///
    /// Producers normally call [`notify`](Self::notify) instead, which skips the syscall while the
    /// owner is running. This is for rare events that must wake it whatever it is doing (shutdown).
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor this struct owns.
        let written = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                std::ptr::from_ref(&one).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        // The only failure of an 8-byte eventfd write is EAGAIN when the counter is at its maximum
        // (2^64 - 2), in which case the fd is readable already and the wake-up is not lost.
        debug_assert!(
            written == 8 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN),
            "eventfd write failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Called by a producer right after it published work for the owner (e.g. pushed into a
    /// mailbox): rings only if the owner has declared itself parked. Returns whether it rang.
    ///
    /// Costs one SeqCst fence and a load while the owner runs — no syscall. Of several producers that
    /// see the flag, only the one that clears it rings.
    pub fn notify(&self) -> bool {
        // Orders the caller's publish before the flag load; pairs with the fence in `begin_park`.
        fence(Ordering::SeqCst);
        if self.parked.0.load(Ordering::Relaxed) && self.parked.0.swap(false, Ordering::Relaxed) {
            self.ring();
            return true;
        }
        false
    }

    /// Whether the owner has declared itself parked (for tests and metrics; racy by nature).
    pub fn is_parked(&self) -> bool {
        self.parked.0.load(Ordering::Relaxed)
    }

    /// Consumes all rings so far without blocking; returns how many there were (0 if none).
    pub fn drain(&self) -> u64 {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a descriptor this struct owns.
        let read = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                std::ptr::from_mut(&mut count).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        // A non-blocking eventfd read fails only with EAGAIN, meaning the counter was zero.
        if read == 8 {
            count
        } else {
            debug_assert!(
                std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN),
                "eventfd read failed: {}",
                std::io::Error::last_os_error()
            );
            0
        }
    }

    /// Declares the owner parked (step 1–2 of the protocol). While the returned guard lives,
    /// producers ring; dropping it declares the owner running again.
    ///
    /// After this returns the caller MUST re-check every input that rings this doorbell, and only
    /// sleep if all are empty.
    pub fn begin_park(&self) -> ParkGuard<'_> {
        self.parked.0.store(true, Ordering::Relaxed);
        // Orders the flag store before the caller's re-check loads; pairs with the fence in `notify`.
        fence(Ordering::SeqCst);
        ParkGuard { doorbell: self }
    }

    /// Sleeps until the doorbell rings or `timeout_ns` passes, then drains it. Returns whether it
    /// was rung. Only meaningful inside [`begin_park`](Self::begin_park); prefer [`park`](Self::park).
    pub fn wait(&self, timeout_ns: u64) -> Result<bool, DoorbellError> {
        const NS_PER_S: u64 = 1_000_000_000;
        let timeout = libc::timespec {
            // Saturate absurd timeouts instead of wrapping into a negative (infinite) one.
            tv_sec: libc::time_t::try_from(timeout_ns / NS_PER_S).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::try_from(timeout_ns % NS_PER_S)
                .expect("a remainder below 10^9 fits in c_long"),
        };
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd and a valid timespec, both live for the call; no signal mask.
        let ready = unsafe { libc::ppoll(&mut pollfd, 1, &timeout, std::ptr::null()) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                return Ok(false);
            }
            return Err(DoorbellError::Wait {
                fd: self.fd.as_raw_fd(),
                source: error,
            });
        }
        Ok(ready > 0 && self.drain() > 0)
    }

    /// The whole park protocol for a thread whose only wake-up source is this doorbell: raise the
    /// flag, ask `has_pending` whether input arrived meanwhile, and sleep at most `timeout_ns` if not.
    pub fn park(
        &self,
        timeout_ns: u64,
        has_pending: impl FnOnce() -> bool,
    ) -> Result<ParkOutcome, DoorbellError> {
        let _parked = self.begin_park();
        if has_pending() {
            return Ok(ParkOutcome::Pending);
        }
        if self.wait(timeout_ns)? {
            Ok(ParkOutcome::Rung)
        } else {
            Ok(ParkOutcome::TimedOut)
        }
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Proof that the owner declared itself parked; dropping it declares the owner running again.
#[derive(Debug)]
#[must_use = "dropping the guard un-parks at once"]
pub struct ParkGuard<'a> {
    doorbell: &'a Doorbell,
}

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        // Relaxed suffices: a producer that still sees `true` merely rings once too often.
        self.doorbell.parked.0.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn notify_while_running_does_not_ring() {
        let bell = Doorbell::new().expect("eventfd");
        assert!(!bell.notify());
        assert_eq!(
            bell.drain(),
            0,
            "no ring may reach the eventfd while the owner runs"
        );
    }

    #[test]
    fn notify_while_parked_rings_once_and_clears_the_flag() {
        let bell = Doorbell::new().expect("eventfd");
        let guard = bell.begin_park();
        assert!(bell.is_parked());
        assert!(bell.notify(), "first producer must ring a parked owner");
        assert!(
            !bell.notify(),
            "second producer must see the flag already cleared"
        );
        drop(guard);
        assert_eq!(bell.drain(), 1);
        assert!(!bell.is_parked());
    }

    #[test]
    fn park_with_pending_input_does_not_sleep() {
        let bell = Doorbell::new().expect("eventfd");
        // An hour-long timeout: if the pending check were ignored this test would hang.
        let outcome = bell.park(3_600_000_000_000, || true).expect("park");
        assert_eq!(outcome, ParkOutcome::Pending);
        assert!(!bell.is_parked(), "the guard must un-park on return");
    }

    #[test]
    fn park_times_out_without_a_ring() {
        let bell = Doorbell::new().expect("eventfd");
        let outcome = bell.park(1_000_000, || false).expect("park");
        assert_eq!(outcome, ParkOutcome::TimedOut);
    }

    #[test]
    fn ring_before_park_ends_the_park_and_is_drained() {
        let bell = Doorbell::new().expect("eventfd");
        bell.ring();
        let outcome = bell.park(3_600_000_000_000, || false).expect("park");
        assert_eq!(outcome, ParkOutcome::Rung);
        assert_eq!(bell.drain(), 0, "park must drain what woke it");
    }

    #[test]
    fn producer_on_another_thread_wakes_a_parked_owner() {
        let bell = Arc::new(Doorbell::new().expect("eventfd"));
        let producer = {
            let bell = Arc::clone(&bell);
            std::thread::spawn(move || {
                // Bounded wait for the owner to raise its flag, then notify.
                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while std::time::Instant::now() < give_up {
                    if bell.is_parked() {
                        return bell.notify();
                    }
                    std::thread::yield_now();
                }
                false
            })
        };
        let outcome = bell.park(3_600_000_000_000, || false).expect("park");
        assert!(
            producer.join().expect("producer thread"),
            "producer saw the flag and rang"
        );
        assert_eq!(outcome, ParkOutcome::Rung);
    }
}
