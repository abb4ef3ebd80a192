//! `aurora lease grant TTL_MS | keep-alive ID [--count N] | revoke ID | ttl ID [--keys] | list`.
//!
//! Lease ids print and parse as hex (`0x1f`) or decimal.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::connect::{fail, ClientArgs};
use super::print::quote;
use super::signals::{install_stop_handler, stop_requested};

#[derive(Debug, Args)]
pub struct LeaseArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub action: LeaseAction,
}

#[derive(Debug, Subcommand)]
pub enum LeaseAction {
    /// Grant a lease; prints its id. Keys put with `--lease ID` vanish when it expires.
    Grant {
        /// Time to live without keep-alives, in milliseconds.
        ttl_ms: u64,
    },
    /// Keep a lease alive: renews it every TTL/3 until Ctrl-C (or COUNT renewals).
    KeepAlive {
        #[arg(value_parser = parse_lease_id)]
        id: u64,
        /// Stop after this many renewals (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
    /// Revoke a lease now; its keys are deleted.
    Revoke {
        #[arg(value_parser = parse_lease_id)]
        id: u64,
    },
    /// A lease's TTL and, with --keys, its keys.
    Ttl {
        #[arg(value_parser = parse_lease_id)]
        id: u64,
        #[arg(long)]
        keys: bool,
    },
    /// Every live lease.
    List,
}

/// A lease id in hex (`0x…`) or decimal.
pub fn parse_lease_id(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| {
        format!("{text:?} is not a lease id; give the id `aurora lease grant` printed (e.g. 0x2a)")
    })
}

pub fn run(args: &LeaseArgs) -> i32 {
    let mut client = match args.client.connect() {
        Ok(c) => c,
        Err(e) => return fail("lease", &e),
    };
    let result = match &args.action {
        LeaseAction::Grant { ttl_ms } => client.lease_grant(*ttl_ms).map(|id| {
            println!("lease {id:#x} granted with TTL {ttl_ms} ms");
        }),
        LeaseAction::Revoke { id } => client.lease_revoke(*id).map(|deleted| {
            println!("lease {id:#x} revoked; {deleted} key(s) deleted");
        }),
        LeaseAction::Ttl { id, keys } => client.lease_time_to_live(*id, *keys).map(|(ttl, ks)| {
            println!("lease {id:#x} granted TTL {ttl} ms");
            for k in ks {
                println!("  {}", quote(&k));
            }
        }),
        LeaseAction::List => client.leases().map(|leases| {
            for l in &leases {
                println!("lease {:#x} TTL {} ms", l.id, l.ttl_ms);
            }
            if leases.is_empty() {
                println!("(no leases)");
            }
        }),
        LeaseAction::KeepAlive { id, count } => {
            install_stop_handler();
            let mut renewed = 0u64;
            loop {
                match client.lease_keep_alive(*id) {
                    Ok(ttl) => {
                        renewed += 1;
                        println!("lease {id:#x} renewed, TTL {ttl} ms");
                        if *count != 0 && renewed >= *count {
                            break Ok(());
                        }
                        let next = Instant::now() + Duration::from_millis((ttl / 3).max(1));
                        while Instant::now() < next && !stop_requested() {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        if stop_requested() {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
    };
    let _ = client.close_session();
    match result {
        Ok(()) => 0,
        Err(e) => fail("lease", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_parse_in_hex_and_decimal() {
        assert_eq!(parse_lease_id("0x2a"), Ok(42));
        assert_eq!(parse_lease_id("42"), Ok(42));
        assert!(parse_lease_id("0xzz").unwrap_err().contains("lease grant"));
    }
}
