//! `aurora lock NAME [--ttl-ms MS] [--wait-ms MS] [--hold-ms MS] [-- COMMAND ARGS...]`.
//!
//! Takes lock NAME under a fresh lease (kept alive while held) and prints the fencing token. With
//! a COMMAND it runs it while holding the lock (the token in `AURORA_LOCK_TOKEN`) and exits with
//! its status; otherwise it holds the lock for `--hold-ms`, or until Ctrl-C. Then it unlocks and
//! revokes the lease. If this process dies, the lock is released when the lease expires.

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::signals::{install_stop_handler, stop_requested};
use crate::client::{Client, ClientError};

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub name: String,
    /// Lease TTL: how long the lock outlives this process if it dies.
    #[arg(long, default_value_t = 10_000)]
    pub ttl_ms: u64,
    /// Give up waiting for the lock after this long.
    #[arg(long, default_value_t = 60_000)]
    pub wait_ms: u64,
    /// Hold the lock this long, then release it (0: until Ctrl-C). Ignored with a COMMAND.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// Run this while holding the lock.
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(args: &LockArgs) -> i32 {
    install_stop_handler();
    let mut client = match args.client.connect() {
        Ok(c) => c,
        Err(e) => return fail("lock", &e),
    };
    let lease = match client.lease_grant(args.ttl_ms) {
        Ok(id) => id,
        Err(e) => return fail("lock", &e),
    };
    let name = args.name.as_bytes();
    let token = match client.lock(name, lease, Duration::from_millis(args.wait_ms)) {
        Ok(token) => token,
        Err(e) => {
            let _ = client.lease_revoke(lease);
            return fail("lock", &e);
        }
    };
    println!(
        "locked {} (fencing token {token}, lease {lease:#x})",
        args.name
    );
    let held = if args.command.is_empty() {
        hold(&mut client, lease, args.ttl_ms, args.hold_ms).map(|()| 0)
    } else {
        run_holding(&mut client, lease, args.ttl_ms, token, &args.command)
    };
    let released = client.unlock(name, token);
    let _ = client.lease_revoke(lease);
    let _ = client.close_session();
    match (held, released) {
        (Ok(code), Ok(())) => {
            println!("unlocked {}", args.name);
            code
        }
        (Err(e), _) | (Ok(_), Err(e)) => fail("lock", &e),
    }
}

/// Keeps the lease alive until `hold_ms` passed (0: until Ctrl-C).
fn hold(client: &mut Client, lease: u64, ttl_ms: u64, hold_ms: u64) -> Result<(), ClientError> {
    let end = (hold_ms > 0).then(|| Instant::now() + Duration::from_millis(hold_ms));
    let renew_every = Duration::from_millis((ttl_ms / 3).max(1));
    let mut next_renewal = Instant::now() + renew_every;
    while !stop_requested() && end.is_none_or(|end| Instant::now() < end) {
        if Instant::now() >= next_renewal {
            client.lease_keep_alive(lease)?;
            next_renewal = Instant::now() + renew_every;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn run_holding(
    client: &mut Client,
    lease: u64,
    ttl_ms: u64,
    token: u64,
    command: &[String],
) -> Result<i32, ClientError> {
    let mut child = match Command::new(&command[0])
        .args(&command[1..])
        .env("AURORA_LOCK_TOKEN", token.to_string())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("aurora lock: cannot run {:?}: {e}", command[0]);
            return Ok(127);
        }
    };
    let renew_every = Duration::from_millis((ttl_ms / 3).max(1));
    let mut next_renewal = Instant::now() + renew_every;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.code().unwrap_or(128)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("aurora lock: cannot wait for {:?}: {e}", command[0]);
                return Ok(1);
            }
        }
        if Instant::now() >= next_renewal {
            if let Err(e) = client.lease_keep_alive(lease) {
                // The lock may be lost: stop the command rather than let it run unprotected.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
            next_renewal = Instant::now() + renew_every;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
