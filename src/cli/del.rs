//! `aurora del KEY [--prefix] [--prev-kv]`: deletes a key (or every key under a prefix); prints how
//! many were deleted.

use clap::Args;

use super::connect::{fail, ClientArgs, KeyArgs};
use super::print::print_kv;
use crate::store::DeleteRangeRequest;

#[derive(Debug, Args)]
pub struct DelArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Also print what was deleted.
    #[arg(long)]
    pub prev_kv: bool,
}

pub fn run(args: &DelArgs) -> i32 {
    let range = args.key.range();
    let request = DeleteRangeRequest {
        range,
        prev_kv: args.prev_kv,
    };
    match args.client.session(|c| c.delete(request)) {
        Ok((revision, reply)) => {
            println!("deleted {} (revision {revision})", reply.deleted);
            for kv in &reply.prev_kvs {
                print_kv(kv);
            }
            0
        }
        Err(e) => fail("del", &e),
    }
}
