//! `aurora del KEY [--prefix] [--prev-kv]`: deletes a key (or every key under a prefix); prints how
//! many were deleted.

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::print::print_kv;
use crate::store::{DeleteRangeRequest, KeyRange};

#[derive(Debug, Args)]
pub struct DelArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub key: String,
    /// Every key that starts with KEY.
    #[arg(long)]
    pub prefix: bool,
    /// Also print what was deleted.
    #[arg(long)]
    pub prev_kv: bool,
}

pub fn run(args: &DelArgs) -> i32 {
    let range = if args.prefix {
        KeyRange::prefix(args.key.as_bytes())
    } else {
        KeyRange::single(args.key.as_bytes())
    };
    let request = DeleteRangeRequest {
        range,
        prev_kv: args.prev_kv,
    };
    match args.client.connect().and_then(|mut c| c.delete(request)) {
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
