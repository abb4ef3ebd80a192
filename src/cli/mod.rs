//! The `aurora` command line: one subcommand per file in this folder.
use clap::{Parser, Subcommand};

pub mod bench;
mod lincheck;
pub mod serve;

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
    /// Run a benchmark (each prints the baseline it compares against, measured in the same run).
    Bench {
        #[command(subcommand)]
        kind: bench::BenchKind,
    },
    /// Check a recorded client history (JSON Lines) for linearizability; exit 0 if it is.
    CheckHistory(lincheck::CheckHistoryArgs),
    /// Run one node until SIGINT/SIGTERM (flags and AURORA_* variables override the file).
    Serve(serve::ServeArgs),
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Bench { kind } => bench::run(kind),
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
        Command::Serve(args) => serve::run(&args),
    }
}
