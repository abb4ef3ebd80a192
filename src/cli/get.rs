//! `aurora get KEY [--prefix] [--rev N] [--stale] [--keys-only] [--limit N]`: reads a key (or every
//! key under a prefix) and prints `key = value (metadata)` lines. Exit code 1 if nothing matched.

use clap::Args;

use super::connect::{ClientArgs, KeyArgs};
use super::print::{print_kv, quote};
use crate::client::Consistency;
use crate::store::RangeRequest;

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Read as of this past revision (0: the latest).
    #[arg(long, default_value_t = 0)]
    pub rev: u64,
    /// Let whichever node answers serve it from its own state (may be slightly stale).
    #[arg(long)]
    pub stale: bool,
    /// Print keys without values.
    #[arg(long)]
    pub keys_only: bool,
    /// At most this many keys (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
}

pub fn run(args: &GetArgs) -> i32 {
    let range = args.key.range();
    let request = RangeRequest {
        range,
        revision: args.rev,
        limit: args.limit,
        keys_only: args.keys_only,
        count_only: false,
    };
    super::range::print_range("get", &args.client, args.stale, request)
}

/// Shared by `get` and `range`.
pub(super) fn print_range_reply(reply: &crate::store::RangeReply, keys_only: bool) {
    for kv in &reply.kvs {
        if keys_only {
            println!("{}", quote(&kv.key));
        } else {
            print_kv(kv);
        }
    }
    if reply.more {
        println!(
            "... {} more (raise --limit)",
            reply.count - reply.kvs.len() as u64
        );
    }
}

pub(super) fn consistency(stale: bool) -> Consistency {
    if stale {
        Consistency::Stale
    } else {
        Consistency::Linearizable
    }
}
