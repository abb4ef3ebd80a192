//! `aurora put KEY VALUE [--lease ID] [--prev-kv]`: writes one key; prints the revision.

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::print::print_kv;
use crate::store::PutRequest;

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub key: String,
    pub value: String,
    /// Attach the key to this lease (from `aurora lease grant`); it vanishes when the lease does.
    #[arg(long, value_parser = super::lease::parse_lease_id, default_value = "0")]
    pub lease: u64,
    /// Also print the value this write replaced.
    #[arg(long)]
    pub prev_kv: bool,
}

pub fn run(args: &PutArgs) -> i32 {
    let mut request = PutRequest::new(args.key.as_bytes(), args.value.as_bytes());
    request.lease = args.lease;
    request.prev_kv = args.prev_kv;
    let result = args.client.session(|c| c.put_request(request));
    match result {
        Ok((revision, reply)) => {
            println!("OK (revision {revision})");
            if let Some(prev) = reply.prev_kv {
                print!("previous: ");
                print_kv(&prev);
            }
            0
        }
        Err(e) => fail("put", &e),
    }
}
