//! `aurora range START [END] [--rev N] [--limit N] [--count-only] [--keys-only] [--stale]`: every key
//! in `[START, END)` (END omitted: every key from START on). Exit code 1 if nothing matched.

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::get::{consistency, print_range_reply};
use crate::store::{KeyRange, RangeRequest};

#[derive(Debug, Args)]
pub struct RangeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub start: String,
    /// Exclusive end; omitted: no upper bound.
    pub end: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub rev: u64,
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// Print only how many keys matched.
    #[arg(long)]
    pub count_only: bool,
    #[arg(long)]
    pub keys_only: bool,
    #[arg(long)]
    pub stale: bool,
}

pub fn run(args: &RangeArgs) -> i32 {
    let range = match &args.end {
        Some(end) => KeyRange {
            key: args.start.as_bytes().to_vec(),
            range_end: end.as_bytes().to_vec(),
        },
        None => KeyRange::from_key(args.start.as_bytes()),
    };
    let request = RangeRequest {
        range,
        revision: args.rev,
        limit: args.limit,
        keys_only: args.keys_only,
        count_only: args.count_only,
    };
    print_range("range", &args.client, args.stale, request)
}

pub(super) fn print_range(
    command: &str,
    client: &ClientArgs,
    stale: bool,
    request: RangeRequest,
) -> i32 {
    let keys_only = request.keys_only;
    let count_only = request.count_only;
    let result = client
        .connect_with(consistency(stale))
        .and_then(|mut c| c.range(request));
    match result {
        Ok((_, reply)) if count_only => {
            println!("{}", reply.count);
            0
        }
        Ok((_, reply)) => {
            print_range_reply(&reply, keys_only);
            i32::from(reply.count == 0)
        }
        Err(e) => fail(command, &e),
    }
}
