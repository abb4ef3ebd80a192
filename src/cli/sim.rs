//! `aurora sim`: runs the deterministic simulator over a range of seeds (DESIGN.md §9.2), or replays
//! one seed with a readable event trace. Exit code 0 when every seed passed, 1 otherwise, 2 on bad
//! arguments.

use std::time::Instant;

use clap::Args;

use crate::sim::{self, RunOutcome, Scenario};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Run exactly this seed (same as `--start S --seeds 1`).
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    pub seed: Option<u64>,
    /// Print every event of the run (one seed only).
    #[arg(long)]
    pub trace: bool,
    /// Switch on a deliberately broken protocol variant (needs a build with `--features mutants`):
    /// weak-quorums, double-vote, commit-previous-term, lease-without-quorum, ack-before-persist,
    /// ring-keep-grant.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Stop at the first failing seed and report how many seeds it took.
    #[arg(long)]
    pub first_failure: bool,
    /// Worker threads (each seed runs on one thread, deterministically); default: all cores.
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn run(args: &SimArgs) -> i32 {
    let (start, count) = match args.seed {
        Some(seed) => (seed, 1),
        None => (args.start, args.seeds),
    };
    if args.trace && count != 1 {
        eprintln!("aurora sim: --trace replays one seed; use --seed S --trace");
        return 2;
    }
    let init = match mutant_switch(args.mutant.as_deref()) {
        Ok(init) => init,
        Err(message) => {
            eprintln!("aurora sim: {message}");
            return 2;
        }
    };
    if args.trace {
        init();
        println!("seed {start}: {}", Scenario::from_seed(start).summary());
        let outcome = sim::run_seed(start, true);
        print_outcome(&outcome);
        println!(
            "sim: 1 seeds, {} failures",
            u32::from(outcome.failure.is_some())
        );
        return i32::from(outcome.failure.is_some());
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let started = Instant::now();
    let report = sim::sweep(start, count, jobs, args.first_failure, &*init, &|o| {
        print_outcome(o)
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ran {} seeds in {secs:.1} s on {jobs} threads: {} events, {} client ops ({} ok), {} entries committed, {} crashes",
        report.seeds, report.events, report.ops, report.ops_ok, report.committed, report.crashes
    );
    println!(
        "ring: {} grants, {} revocations; {} one-sided seeds: {} writes, {} landed, {} failed ({} refused by a revoked grant)",
        report.ring.grants,
        report.ring.revocations,
        report.one_sided_seeds,
        report.ring.writes,
        report.ring.landed,
        report.ring.failed,
        report.ring.refused
    );
    if args.first_failure {
        match report.failures.first() {
            Some(f) => println!(
                "first failure: seed {} ({} seeds from {start})",
                f.seed,
                f.seed - start + 1
            ),
            None => println!("no failure in {} seeds from {start}", report.seeds),
        }
    }
    println!(
        "sim: {} seeds, {} failures",
        report.seeds,
        report.failures.len()
    );
    i32::from(!report.failures.is_empty())
}

fn print_outcome(o: &RunOutcome) {
    let s = &o.stats;
    match &o.failure {
        None => println!(
            "seed {} ok: {} events, {} ms virtual, {} ops ({} ok, {} unknown), {} committed, term {}, {} crashes, {} conf changes, {} transfers, {} snapshots installed, ring writes {} landed / {} failed",
            o.seed,
            s.events,
            s.virtual_ns / 1_000_000,
            s.ops,
            s.ops_ok,
            s.ops_unknown,
            s.committed,
            s.terms,
            s.crashes,
            s.conf_changes,
            s.transfers,
            s.snapshots_installed,
            s.ring.landed,
            s.ring.failed
        ),
        Some(reason) => {
            println!("seed {} FAILED: {reason}", o.seed);
            println!("  scenario: {}", Scenario::from_seed(o.seed).summary());
            println!("  replay:   hack/sim.sh --seed {} --trace", o.seed);
        }
    }
}

type Init = Box<dyn Fn() + Sync>;

#[cfg(feature = "mutants")]
fn mutant_switch(name: Option<&str>) -> Result<Init, String> {
    use clap::ValueEnum;

    use crate::mutants::{self, Mutant};
    let mutant = match name {
        None => None,
        Some(name) => Some(Mutant::from_str(name, true).map_err(|_| {
            let known: Vec<String> = Mutant::value_variants()
                .iter()
                .filter_map(|m| m.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            format!("unknown mutant {name:?}; known: {}", known.join(", "))
        })?),
    };
    Ok(Box::new(move || mutants::set(mutant)))
}

#[cfg(not(feature = "mutants"))]
fn mutant_switch(name: Option<&str>) -> Result<Init, String> {
    match name {
        None => Ok(Box::new(|| {})),
        Some(name) => Err(format!(
            "mutant {name:?} needs a build with the mutants feature: cargo run --profile sim --features mutants -- sim --mutant {name}"
        )),
    }
}
