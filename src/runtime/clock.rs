//! Time for the poll loop: one monotonic clock read per iteration, injected everywhere below.
//!
//! The sans-IO layers (consensus, store, timers) never read a clock; the loop reads it once per
//! iteration and hands the value down, so one iteration sees one instant and the simulator can
//! substitute its own time.

/// A source of monotonic nanoseconds. The poll loop calls [`now_ns`](Self::now_ns) exactly once per
/// iteration; tests and the simulator implement it with a manual clock.
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed origin; never decreases.
    fn now_ns(&mut self) -> u64;
}

/// The real clock: `CLOCK_MONOTONIC` (a vDSO call, no syscall on x86-64).
#[derive(Debug, Default, Clone, Copy)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now_ns(&mut self) -> u64 {
        read_clock_ns(libc::CLOCK_MONOTONIC)
    }
}

/// CPU time the calling thread has consumed, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
///
/// A syscall: for measurements (is a parked shard really idle?), not for the hot path.
pub fn thread_cpu_time_ns() -> u64 {
    read_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn read_clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, live timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    // clock_gettime fails only for an unknown clock id or a bad pointer; both clocks here exist on
    // every Linux since 2.6.12 and the pointer is a local.
    assert_eq!(
        rc,
        0,
        "clock_gettime({clock}) failed: {}",
        std::io::Error::last_os_error()
    );
    let secs = u64::try_from(ts.tv_sec).expect("monotonic and CPU-time clocks are never negative");
    let nanos = u64::try_from(ts.tv_nsec).expect("tv_nsec is in 0..10^9");
    secs * 1_000_000_000 + nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_never_goes_backwards() {
        let mut clock = MonotonicClock;
        let mut previous = clock.now_ns();
        for _ in 0..10_000 {
            let now = clock.now_ns();
            assert!(now >= previous, "{now} < {previous}");
            previous = now;
        }
    }

    #[test]
    fn thread_cpu_time_grows_with_work_and_not_with_sleep() {
        let before_sleep = thread_cpu_time_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_time_ns() - before_sleep;
        // Sleeping 50 ms of wall time must not be charged as 50 ms of CPU to this thread.
        assert!(slept < 25_000_000, "sleep charged {slept} ns of CPU");

        let before_work = thread_cpu_time_ns();
        let mut x: u64 = 1;
        for _ in 0..5_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        assert!(
            thread_cpu_time_ns() > before_work,
            "five million multiplies cost no CPU time"
        );
    }
}
