//! `aurora status [--json]`: every endpoint's view of the cluster — role, term, leader, commit and
//! applied index, revision, durability mode. Exit code 1 if any endpoint did not answer.

use clap::Args;

use super::connect::ClientArgs;
use crate::client::{Client, ClientError, NodeStatus};
use crate::config::Durability;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// One JSON object per endpoint, one per line.
    #[arg(long)]
    pub json: bool,
}

/// One endpoint and what it answered.
pub type EndpointStatus = (std::net::SocketAddr, Result<NodeStatus, ClientError>);

/// The status of every endpoint, in the order given.
pub fn query_all(args: &ClientArgs) -> Result<Vec<EndpointStatus>, ClientError> {
    let opts = args.options()?;
    Ok(opts
        .endpoints
        .iter()
        .map(|addr| {
            let mut one = opts.clone();
            one.endpoints = vec![*addr];
            let status = Client::connect(one).and_then(|mut c| c.status());
            (*addr, status)
        })
        .collect())
}

pub fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Fsync => "fsync",
        Durability::Memory => "memory",
    }
}

pub fn run(args: &StatusArgs) -> i32 {
    let all = match query_all(&args.client) {
        Ok(all) => all,
        Err(e) => return super::connect::fail("status", &e),
    };
    let mut code = 0;
    if !args.json {
        println!(
            "{:<22} {:>4} {:<13} {:>6} {:>6} {:>10} {:>10} {:>10}  durability",
            "endpoint", "node", "role", "term", "leader", "commit", "applied", "revision"
        );
    }
    for (addr, status) in all {
        match status {
            Ok(s) if args.json => println!(
                "{}",
                serde_json::json!({
                    "endpoint": addr.to_string(), "node_id": s.node_id, "role": s.role.as_str(),
                    "term": s.term, "leader": s.leader, "commit_index": s.commit_index,
                    "applied_index": s.applied_index, "revision": s.revision,
                    "durability": durability_name(s.durability),
                    "leader_client_addr": s.leader_client_addr,
                })
            ),
            Ok(s) => println!(
                "{:<22} {:>4} {:<13} {:>6} {:>6} {:>10} {:>10} {:>10}  {}",
                addr.to_string(),
                s.node_id,
                s.role.as_str(),
                s.term,
                s.leader,
                s.commit_index,
                s.applied_index,
                s.revision,
                durability_name(s.durability)
            ),
            Err(e) => {
                code = 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"endpoint": addr.to_string(), "error": e.to_string()})
                    );
                } else {
                    // The table names the endpoint already; keep the row to the cause.
                    let cause = match &e {
                        ClientError::Unreachable { last, .. } => last.clone(),
                        other => other.to_string(),
                    };
                    println!("{:<22} unreachable: {cause}", addr.to_string());
                }
            }
        }
    }
    code
}
