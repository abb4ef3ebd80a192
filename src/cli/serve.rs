//! `aurora serve --config FILE [--set key=value …]`: runs one node until SIGINT or SIGTERM.
//!
//! Layers, later wins: the file, `AURORA_*` environment variables, `--set` flags (see
//! `crate::config`). Logs go to stderr (`RUST_LOG` filters, default `info`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The node's configuration file (see config/ for commented examples).
    #[arg(long)]
    pub config: PathBuf,
    /// Override one key, e.g. `--set node_id=2 --set timing.heartbeat_interval_ms=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Raised by the signal handler; the main thread polls it.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe, and has
        // the signature `signal(2)` expects.
        let previous =
            unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
        if previous == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs the node; returns the process exit code.
pub fn run(args: &ServeArgs) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = match crate::config::load(
        &args.config,
        crate::config::process_env(),
        args.set.iter().cloned(),
    ) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("aurora serve: invalid configuration:\n{errors}");
            return 2;
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("aurora serve: cannot install signal handlers: {e}");
        return 1;
    }
    let server = match crate::server::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aurora serve: {e}");
            return 1;
        }
    };
    eprintln!(
        "aurora serve: node {} serving clients on {} and admin HTTP on http://{} (Ctrl-C stops)",
        server.node_id, server.client_addr, server.admin_addr
    );
    // Bounded by the signal or the loop's own exit.
    while !STOP.load(Ordering::SeqCst) && !server.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped_by_signal = STOP.load(Ordering::SeqCst);
    match server.shutdown() {
        Ok(()) if stopped_by_signal => {
            eprintln!("aurora serve: stopped cleanly");
            0
        }
        Ok(()) => 0,
        Err(e) => {
            eprintln!("aurora serve: node failed: {e}");
            1
        }
    }
}
