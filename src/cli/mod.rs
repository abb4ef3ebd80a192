//! The `aurora` command line: one subcommand per file in this folder.
use clap::{Parser, Subcommand};

mod barrier;
pub mod bench;
pub mod bench_cluster;
pub mod connect;
mod counter;
mod del;
mod get;
mod health;
mod lease;
mod lincheck;
mod lock;
pub mod print;
mod put;
mod range;
pub mod serve;
mod signals;
mod sim;
pub mod status;
mod txn;
pub mod up;
mod watch;

/// Aurora: a low-latency coordination daemon for HPC clusters.
#[derive(Debug, Parser)]
#[command(name = "aurora", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the build's features and exit.
    Version,
    /// Run a benchmark (each prints the baseline it compares against, measured in the same run);
    /// without a subcommand: commit latency and throughput of a running cluster.
    Bench(bench::BenchArgs),
    /// Check a recorded client history (JSON Lines) for linearizability; exit 0 if it is.
    CheckHistory(lincheck::CheckHistoryArgs),
    /// Start a local cluster on loopback (`aurora serve` children) until Ctrl-C.
    Up(up::UpArgs),
    /// Write a key.
    Put(put::PutArgs),
    /// Read a key, or every key under a prefix.
    Get(get::GetArgs),
    /// Delete a key, or every key under a prefix.
    Del(del::DelArgs),
    /// Read every key in [START, END).
    Range(range::RangeArgs),
    /// Run a transaction: --if conditions, --then ops, --else ops.
    Txn(txn::TxnArgs),
    /// Print changes to a key or prefix as they commit.
    Watch(watch::WatchArgs),
    /// Grant, keep alive, revoke and inspect leases.
    Lease(lease::LeaseArgs),
    /// Hold a lock (printing its fencing token), optionally while running a command.
    Lock(lock::LockArgs),
    /// Wait at a barrier until N members arrived.
    Barrier(barrier::BarrierArgs),
    /// Read or atomically add to a counter.
    Counter(counter::CounterArgs),
    /// Every endpoint's role, term, leader, indexes and durability.
    Status(status::StatusArgs),
    /// Exit 0 if the cluster serves linearizable requests now.
    Health(health::HealthArgs),
    /// Run one node until SIGINT/SIGTERM (flags and AURORA_* variables override the file).
    Serve(serve::ServeArgs),
    /// One side of a two-process ping-pong over a DPDK device (rigs and hack/bench-dpdk.sh).
    #[cfg(feature = "dpdk")]
    DpdkPing(crate::transport::dpdk::pingpong::PingArgs),
    /// Run the deterministic simulator over seeds, or replay one seed with a trace.
    Sim(sim::SimArgs),
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Version => {
            let features: Vec<&str> = [
                ("rdma", cfg!(feature = "rdma")),
                ("dpdk", cfg!(feature = "dpdk")),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
            println!(
                "aurora {} features: [{}]",
                env!("CARGO_PKG_VERSION"),
                features.join(", ")
            );
            0
        }
        Command::CheckHistory(args) => lincheck::run(&args),
        Command::Up(args) => up::run(&args),
        Command::Put(args) => put::run(&args),
        Command::Get(args) => get::run(&args),
        Command::Del(args) => del::run(&args),
        Command::Range(args) => range::run(&args),
        Command::Txn(args) => txn::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Lease(args) => lease::run(&args),
        Command::Lock(args) => lock::run(&args),
        Command::Barrier(args) => barrier::run(&args),
        Command::Counter(args) => counter::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Health(args) => health::run(&args),
        Command::Serve(args) => serve::run(&args),
        #[cfg(feature = "dpdk")]
        Command::DpdkPing(args) => crate::transport::dpdk::pingpong::run(&args),
        Command::Sim(args) => sim::run(&args),
    }
}
