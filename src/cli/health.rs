//! `aurora health`: whether the cluster serves linearizable requests right now. Asks every
//! endpoint for its status, then makes one linearizable read through the leader. Exit code 0 when
//! the read succeeded (unreachable nodes are listed as warnings), 1 otherwise.

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::status::query_all;
use crate::client::NodeRole;
use crate::store::{KeyRange, RangeRequest};

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: &HealthArgs) -> i32 {
    let all = match query_all(&args.client) {
        Ok(all) => all,
        Err(e) => return fail("health", &e),
    };
    let total = all.len();
    let mut reachable = 0;
    let mut leader = None;
    for (addr, status) in &all {
        match status {
            Ok(s) => {
                reachable += 1;
                if s.role == NodeRole::Leader {
                    leader = Some((s.node_id, s.term, *addr));
                }
            }
            Err(e) => println!("warning: {addr} unreachable: {e}"),
        }
    }
    let probe = RangeRequest {
        count_only: true,
        ..RangeRequest::latest(KeyRange::single(&b"aurora/health"[..]))
    };
    match args.client.connect().and_then(|mut c| c.range(probe)) {
        Ok((revision, _)) => {
            match leader {
                Some((id, term, addr)) => println!(
                    "healthy: leader node {id} at {addr} (term {term}), {reachable}/{total} \
                     endpoints reachable, revision {revision}"
                ),
                None => println!(
                    "healthy: linearizable read served, {reachable}/{total} endpoints reachable \
                     (the leader is not among them), revision {revision}"
                ),
            }
            0
        }
        Err(e) => {
            println!(
                "unhealthy: {reachable}/{total} endpoints reachable, a linearizable read failed: {e}"
            );
            1
        }
    }
}
