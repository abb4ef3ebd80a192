//! Ctrl-C and SIGTERM for commands that run until stopped (`up`, `watch`, `lock`): the handler
//! only sets a flag that the command's loop polls, so no work happens in signal context.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`stop_requested`]. Children started later get the default
/// dispositions back on exec.
pub fn install_stop_handler() {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    for signo in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signo, handler as libc::sighandler_t);
        }
    }
}

/// Whether SIGINT or SIGTERM arrived since [`install_stop_handler`].
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}
