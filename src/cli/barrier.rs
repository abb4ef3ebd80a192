//! `aurora barrier NAME N [--wait-ms MS]`: arrives at barrier NAME of N members and blocks until all
//! N have arrived; prints the generation released. Each arrival holds a lease that outlives the
//! wait, so a member that dies breaks the barrier for the others instead of hanging it forever.

use std::time::Duration;

use clap::Args;

use super::connect::{fail, ClientArgs};

/// How much longer than the wait the member's lease lives.
const LEASE_MARGIN_MS: u64 = 10_000;

#[derive(Debug, Args)]
pub struct BarrierArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub name: String,
    /// Members that must arrive before any is released.
    pub n: u32,
    /// Give up after this long.
    #[arg(long, default_value_t = 600_000)]
    pub wait_ms: u64,
}

pub fn run(args: &BarrierArgs) -> i32 {
    let mut client = match args.client.connect() {
        Ok(c) => c,
        Err(e) => return fail("barrier", &e),
    };
    let lease = match client.lease_grant(args.wait_ms.saturating_add(LEASE_MARGIN_MS)) {
        Ok(id) => id,
        Err(e) => return fail("barrier", &e),
    };
    let wait = Duration::from_millis(args.wait_ms);
    let result = client.barrier(args.name.as_bytes(), args.n, lease, wait);
    let _ = client.lease_revoke(lease);
    let _ = client.close_session();
    match result {
        Ok(generation) => {
            println!(
                "barrier {} released: all {} arrived (generation {generation})",
                args.name, args.n
            );
            0
        }
        Err(e) => fail("barrier", &e),
    }
}
