//! `aurora check-history FILE`: reads a JSON Lines history (docs/HISTORY_FORMAT.md) and prints
//! whether it is linearizable. The chaos tests call it on the histories they record.
//!
//! Exit codes: 0 linearizable, 1 not linearizable, 2 undecided (search budget exhausted) or the
//! history could not be read.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use crate::lincheck::{check_with_stats, History, Limits, Verdict};

#[derive(Debug, Args)]
pub struct CheckHistoryArgs {
    /// The history: one JSON operation per line; `-` reads standard input.
    pub file: PathBuf,
    /// Also print per-key search statistics (ops, steps, memoized states, backtracks, time).
    #[arg(long)]
    pub stats: bool,
    /// Give up on a key (verdict: inconclusive) after this many search steps.
    #[arg(long, default_value_t = Limits::default().max_steps_per_key)]
    pub max_steps_per_key: u64,
    /// Give up on a key (verdict: inconclusive) once it has memoized this many search states.
    #[arg(long, default_value_t = Limits::default().max_states_per_key)]
    pub max_states_per_key: usize,
}

pub fn run(args: &CheckHistoryArgs) -> i32 {
    let history = match read(&args.file) {
        Ok(history) => history,
        Err(message) => {
            eprintln!("aurora check-history: {message}");
            return 2;
        }
    };
    let limits = Limits {
        max_steps_per_key: args.max_steps_per_key,
        max_states_per_key: args.max_states_per_key,
    };
    let started = Instant::now();
    let report = check_with_stats(&history, &limits);
    let elapsed = started.elapsed();
    println!("{}", report.verdict);
    if args.stats {
        println!(
            "checked {} operations on {} keys in {:.3} ms",
            history.len(),
            report.keys.len(),
            elapsed.as_secs_f64() * 1e3
        );
        for key in &report.keys {
            println!(
                "  key {:?}: {} ops ({} dropped), {} steps, {} states, {} backtracks, longest prefix {}, {}",
                key.key,
                key.ops,
                key.dropped_ops,
                key.search.steps,
                key.search.states,
                key.search.backtracks,
                key.search.longest_prefix,
                if key.linearizable { "linearizable" } else { "NOT proven linearizable" },
            );
        }
    }
    match report.verdict {
        Verdict::Linearizable => 0,
        Verdict::Violation { .. } => 1,
        Verdict::Inconclusive { .. } => 2,
    }
}

fn read(path: &Path) -> Result<History, String> {
    let parsed = if path.as_os_str() == "-" {
        History::from_jsonl(io::stdin().lock())
    } else {
        let file =
            File::open(path).map_err(|e| format!("cannot open history {}: {e}", path.display()))?;
        History::from_jsonl(BufReader::new(file))
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}
