//! `aurora watch KEY [--prefix] [--rev N] [--count N]`: prints every change to KEY (or under the
//! prefix) as it commits, one line each, until Ctrl-C or COUNT events. Survives leader changes and
//! node failures without losing or repeating events (see [`crate::client::Watch`]).

use std::io::Write as _;
use std::time::Duration;

use clap::Args;

use super::connect::{fail, ClientArgs, KeyArgs};
use super::print::event_line;
use super::signals::{install_stop_handler, stop_requested};
use crate::client::Watch;

/// How often the loop looks at Ctrl-C while no event arrives.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Start at this revision (replaying history from there); 0: changes from now on.
    #[arg(long, default_value_t = 0)]
    pub rev: u64,
    /// Exit after this many events (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

pub fn run(args: &WatchArgs) -> i32 {
    install_stop_handler();
    let range = args.key.range();
    let mut watch = match args
        .client
        .options()
        .and_then(|opts| Watch::open(opts, range, args.rev, false))
    {
        Ok(w) => w,
        Err(e) => return fail("watch", &e),
    };
    let key = &args.key;
    eprintln!("watching {}{}", key.key, if key.prefix { "*" } else { "" });
    let mut seen = 0u64;
    while !stop_requested() && (args.count == 0 || seen < args.count) {
        match watch.next_event(POLL) {
            Ok(Some(event)) => {
                seen += 1;
                println!("{}", event_line(&event));
                let _ = std::io::stdout().flush();
            }
            Ok(None) => {}
            Err(e) => return fail("watch", &e),
        }
    }
    0
}
