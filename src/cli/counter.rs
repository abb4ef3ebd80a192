//! `aurora counter NAME [--add DELTA]`: reads a counter, or atomically adds to it (fetch-add) and
//! prints the value before and after — a cluster-wide sequencer for job ids and the like.

use clap::Args;

use super::connect::{fail, ClientArgs};

#[derive(Debug, Args)]
pub struct CounterArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub name: String,
    /// Add this (may be negative) and print the previous value; omitted: just read.
    #[arg(long, allow_hyphen_values = true)]
    pub add: Option<i64>,
}

pub fn run(args: &CounterArgs) -> i32 {
    let name = args.name.as_bytes();
    let result = args.client.session(|client| match args.add {
        Some(delta) => client.fetch_add(name, delta).map(|previous| {
            println!("{} (was {previous})", previous.saturating_add(delta));
        }),
        None => client.counter(name).map(|value| println!("{value}")),
    });
    match result {
        Ok(()) => 0,
        Err(e) => fail("counter", &e),
    }
}
