//! `aurora-vs-etcd`: the side-by-side benchmark against etcd, driven by hack/bench-vs-etcd.sh.
//!
//! Why a separate binary behind feature `bench-etcd`: the etcd client is async (tonic/gRPC) and the
//! plot needs a drawing crate; neither belongs in the daemon's default build.
//!
//! Two subcommands, so the shell script owns the processes and this binary owns the numbers:
//!
//! * `measure --system etcd|aurora --mode memory|fsync --endpoints A,B,C` runs the three workloads
//!   (put with 1 client, put with 64 in flight, linearizable get with 1 client; 64 B values; a
//!   warm-up, then a timed run) through the system's native client against a cluster the script
//!   started, and writes one JSON part file with ops/s, p50/p99/p999 and a latency CDF per workload.
//! * `report PART... --json FILE --png FILE` joins the parts into one table with the ratios, one
//!   JSON document, and one latency-CDF picture.
//!
//! Latencies are recorded in an HDR histogram (3 significant digits) per client and merged; a
//! workload's throughput is its completed operations over the measured wall time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Value size of every write, as the issue specifies.
const VALUE_BYTES: usize = 64;
/// Writes cycle over this many keys so the store stays small and the same for both systems.
const KEY_SPACE: u64 = 1024;
/// Outstanding requests in the pipelined put workload.
const PIPELINE_DEPTH: usize = 64;
/// Latencies above this are clamped into the histogram's top bucket (and would be a finding).
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// Quantiles sampled for the CDF picture and the JSON; dense in the tail, where the systems differ.
const CDF_QUANTILES: &[f64] = &[
    0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999,
    0.9995, 0.9999, 1.0,
];

#[derive(Debug, Parser)]
#[command(
    name = "aurora-vs-etcd",
    about = "Aurora beside etcd: identical workloads, native clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the three workloads against one running cluster and write a part file.
    Measure(MeasureArgs),
    /// Join part files into the table, the JSON report and the CDF picture.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct MeasureArgs {
    #[arg(long, value_enum)]
    system: System,
    /// The durability mode the cluster was started in (recorded, not set: the script sets it).
    #[arg(long, value_enum)]
    mode: Mode,
    /// Client endpoints, comma separated (etcd: http://127.0.0.1:2379,…; Aurora: 127.0.0.1:7001,…).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Aurora only: the cluster's `cluster_id` (every frame carries it). Default: `aurora up`'s.
    #[arg(long, default_value_t = 0x0a17_1000)]
    cluster_id: u64,
    /// Measured seconds per workload.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unrecorded seconds run first for each workload.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Where to write the part (JSON).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Part files written by `measure`.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
    /// Write the joined results here.
    #[arg(long)]
    json: PathBuf,
    /// Draw the latency CDFs here.
    #[arg(long)]
    png: PathBuf,
    /// The command line that produced the run, recorded in the JSON.
    #[arg(long, default_value = "")]
    command: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum System {
    Etcd,
    Aurora,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Replicated memory: etcd `--unsafe-no-fsync`, Aurora `durability = memory`.
    Memory,
    /// Every commit fsynced on a quorum.
    Fsync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Workload {
    /// Sequential puts from one client: commit latency.
    Put1,
    /// 64 puts in flight: commit throughput.
    Put64,
    /// Sequential linearizable gets from one client: read latency.
    Get1,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Put1, Workload::Put64, Workload::Get1];

    fn label(self) -> &'static str {
        match self {
            Workload::Put1 => "put, 1 client",
            Workload::Put64 => "put, 64 in flight",
            Workload::Get1 => "linearizable get, 1 client",
        }
    }

    fn in_flight(self) -> usize {
        match self {
            Workload::Put64 => PIPELINE_DEPTH,
            Workload::Put1 | Workload::Get1 => 1,
        }
    }
}

/// One system × mode × workload result, as written to the part files and the final JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Result_ {
    system: System,
    mode: Mode,
    workload: Workload,
    ops: u64,
    seconds: f64,
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    /// (quantile, latency µs) pairs at [`CDF_QUANTILES`].
    cdf: Vec<(f64, f64)>,
}

/// Latencies and the operation count of one measured run.
struct Recorded {
    latency_ns: Histogram<u64>,
    elapsed: Duration,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("static bounds are valid")
}

fn record(histogram: &mut Histogram<u64>, started: Instant) {
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    histogram.saturating_record(ns.clamp(1, LATENCY_MAX_NS));
}

impl Recorded {
    fn into_result(self, system: System, mode: Mode, workload: Workload) -> Result_ {
        let h = &self.latency_ns;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        let seconds = self.elapsed.as_secs_f64();
        Result_ {
            system,
            mode,
            workload,
            ops: h.len(),
            seconds,
            ops_per_s: h.len() as f64 / seconds,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1e3,
            cdf: CDF_QUANTILES.iter().map(|&q| (q, us(q))).collect(),
        }
    }
}

fn value() -> Vec<u8> {
    (0..VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect()
}

fn key(i: u64) -> String {
    format!("bench/{:04}", i % KEY_SPACE)
}

/// The etcd side: the `etcd-client` crate (gRPC), one connection, on a single-threaded runtime so
/// the client costs one core at most, as Aurora's blocking client does.
mod etcd {
    use super::*;
    use etcd_client::{Client, GetOptions};

    pub fn measure(args: &MeasureArgs) -> Result<Vec<Result_>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        runtime.block_on(async {
            let client = Client::connect(&args.endpoints, None)
                .await
                .map_err(|e| format!("cannot connect to etcd at {:?}: {e}", args.endpoints))?;
            let mut results = Vec::new();
            for workload in Workload::ALL {
                let warmup = Duration::from_secs(args.warmup_seconds);
                run(&client, workload, warmup).await?;
                let recorded = run(&client, workload, Duration::from_secs(args.seconds)).await?;
                results.push(recorded.into_result(System::Etcd, args.mode, workload));
            }
            Ok(results)
        })
    }

    async fn run(client: &Client, workload: Workload, span: Duration) -> Result<Recorded, String> {
        let value = value();
        if workload == Workload::Get1 {
            let mut kv = client.kv_client();
            kv.put(key(0), value.clone(), None)
                .await
                .map_err(|e| format!("etcd put of the key to read failed: {e}"))?;
        }
        let started = Instant::now();
        let deadline = started + span;
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..workload.in_flight() as u64 {
            let mut kv = client.kv_client();
            let value = value.clone();
            tasks.spawn(async move {
                let mut histogram = new_histogram();
                let mut i = lane;
                while Instant::now() < deadline {
                    let op_started = Instant::now();
                    match workload {
                        Workload::Put1 | Workload::Put64 => {
                            kv.put(key(i), value.clone(), None).await.map(|_| ())
                        }
                        Workload::Get1 => {
                            // etcd's default range is linearizable (serializable = false).
                            let options = GetOptions::new().with_limit(1);
                            kv.get(key(0), Some(options)).await.map(|r| {
                                debug_assert_eq!(r.kvs().len(), 1, "the key was written first");
                            })
                        }
                    }
                    .map_err(|e| format!("etcd {workload:?} failed: {e}"))?;
                    record(&mut histogram, op_started);
                    i += PIPELINE_DEPTH as u64;
                }
                Ok::<_, String>(histogram)
            });
        }
        let mut merged = new_histogram();
        while let Some(joined) = tasks.join_next().await {
            let histogram = joined.map_err(|e| format!("an etcd client task died: {e}"))??;
            merged.add(&histogram).expect("same bounds");
        }
        Ok(Recorded {
            latency_ns: merged,
            elapsed: started.elapsed(),
        })
    }
}

/// The Aurora side: Aurora's blocking Rust client; the 64-in-flight workload uses its pipelined
/// API (`submit` / `wait_any`) on one connection, as the etcd side multiplexes 64 calls on one.
mod aurora_side {
    use super::*;
    use aurora::client::{parse_endpoints, Client, ClientOptions, Ticket};
    use aurora::store::{Command, PutRequest};
    use std::collections::HashMap;

    pub fn measure(args: &MeasureArgs) -> Result<Vec<Result_>, String> {
        let endpoints = parse_endpoints(&args.endpoints.join(",")).map_err(|e| e.to_string())?;
        let mut options = ClientOptions::new(endpoints);
        options.max_in_flight = PIPELINE_DEPTH;
        options.cluster_id = args.cluster_id;
        let mut client = Client::connect(options)
            .map_err(|e| format!("cannot connect to Aurora at {:?}: {e}", args.endpoints))?;
        let mut results = Vec::new();
        for workload in Workload::ALL {
            run(
                &mut client,
                workload,
                Duration::from_secs(args.warmup_seconds),
            )?;
            let recorded = run(&mut client, workload, Duration::from_secs(args.seconds))?;
            results.push(recorded.into_result(System::Aurora, args.mode, workload));
        }
        Ok(results)
    }

    fn run(client: &mut Client, workload: Workload, span: Duration) -> Result<Recorded, String> {
        let value = value();
        let failed = |e: aurora::client::ClientError| format!("Aurora {workload:?} failed: {e}");
        let mut histogram = new_histogram();
        let started = Instant::now();
        let deadline = started + span;
        match workload {
            Workload::Put1 => {
                let mut i = 0;
                while Instant::now() < deadline {
                    let op_started = Instant::now();
                    client.put(key(i).as_bytes(), &value).map_err(failed)?;
                    record(&mut histogram, op_started);
                    i += 1;
                }
            }
            Workload::Get1 => {
                client.put(key(0).as_bytes(), &value).map_err(failed)?;
                while Instant::now() < deadline {
                    let op_started = Instant::now();
                    // The client's default consistency is linearizable (leader lease or ReadIndex).
                    let kv = client.get(key(0).as_bytes()).map_err(failed)?;
                    record(&mut histogram, op_started);
                    debug_assert!(kv.is_some(), "the key was written first");
                }
            }
            Workload::Put64 => {
                let mut sent: HashMap<Ticket, Instant> = HashMap::with_capacity(PIPELINE_DEPTH);
                let mut i = 0;
                loop {
                    while sent.len() < PIPELINE_DEPTH && Instant::now() < deadline {
                        let put = Command::Put(PutRequest::new(key(i), value.clone()));
                        sent.insert(client.submit(put).map_err(failed)?, Instant::now());
                        i += 1;
                    }
                    let Some((ticket, result)) = client.wait_any().map_err(failed)? else {
                        break;
                    };
                    result.map_err(failed)?;
                    let op_started = sent.remove(&ticket).expect("every answer was submitted");
                    record(&mut histogram, op_started);
                }
                assert!(sent.is_empty(), "every submitted put was answered");
            }
        }
        Ok(Recorded {
            latency_ns: histogram,
            elapsed: started.elapsed(),
        })
    }
}

fn measure(args: &MeasureArgs) -> Result<(), String> {
    assert!(args.seconds > 0, "a zero-second run measures nothing");
    let results = match args.system {
        System::Etcd => etcd::measure(args)?,
        System::Aurora => aurora_side::measure(args)?,
    };
    for r in &results {
        assert!(
            r.ops > 0,
            "{:?} {:?} completed no operation",
            r.system,
            r.workload
        );
        eprintln!(
            "  {:?} {:?} {:<27} {:>9.0} ops/s  p50 {:>8.1} µs  p99 {:>8.1} µs",
            r.system,
            r.mode,
            r.workload.label(),
            r.ops_per_s,
            r.p50_us,
            r.p99_us
        );
    }
    let text = serde_json::to_string_pretty(&results).expect("results serialize");
    std::fs::write(&args.out, text).map_err(|e| format!("cannot write {}: {e}", args.out.display()))
}

/// Key of a comparison row: mode, workload.
type Row = (Mode, Workload);

fn report(args: &ReportArgs) -> Result<(), String> {
    let mut results: Vec<Result_> = Vec::new();
    for part in &args.parts {
        let text = std::fs::read_to_string(part)
            .map_err(|e| format!("cannot read part {}: {e}", part.display()))?;
        let mut these: Vec<Result_> = serde_json::from_str(&text)
            .map_err(|e| format!("part {} is not a measure output: {e}", part.display()))?;
        results.append(&mut these);
    }
    let mut rows: BTreeMap<Row, BTreeMap<System, Result_>> = BTreeMap::new();
    for r in results {
        let previous = rows
            .entry((r.mode, r.workload))
            .or_default()
            .insert(r.system, r.clone());
        assert!(
            previous.is_none(),
            "two results for {:?} {:?} {:?}",
            r.system,
            r.mode,
            r.workload
        );
    }
    print!("{}", table(&rows));
    let ratios: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|((mode, workload), by_system)| {
            let (etcd, aurora) = (
                by_system.get(&System::Etcd)?,
                by_system.get(&System::Aurora)?,
            );
            Some(serde_json::json!({
                "mode": mode, "workload": workload,
                "throughput_x": aurora.ops_per_s / etcd.ops_per_s,
                "p50_x": etcd.p50_us / aurora.p50_us,
                "p99_x": etcd.p99_us / aurora.p99_us,
                "p999_x": etcd.p999_us / aurora.p999_us,
            }))
        })
        .collect();
    let all: Vec<&Result_> = rows.values().flat_map(|m| m.values()).collect();
    let document = serde_json::json!({
        "command": args.command,
        "value_bytes": VALUE_BYTES,
        "results": all,
        "ratios": ratios,
    });
    let text = serde_json::to_string_pretty(&document).expect("report serializes");
    std::fs::write(&args.json, text)
        .map_err(|e| format!("cannot write {}: {e}", args.json.display()))?;
    plot::cdf(&rows, &args.png)?;
    println!(
        "JSON: {}   CDF: {}",
        args.json.display(),
        args.png.display()
    );
    Ok(())
}

fn table(rows: &BTreeMap<Row, BTreeMap<System, Result_>>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<27} {:<7} {:>10} {:>10} {:>10} {:>10}",
        "mode", "workload", "system", "ops/s", "p50 µs", "p99 µs", "p99.9 µs"
    );
    for ((mode, workload), by_system) in rows {
        for r in by_system.values() {
            let _ = writeln!(
                out,
                "{:<7} {:<27} {:<7} {:>10.0} {:>10.1} {:>10.1} {:>10.1}",
                format!("{mode:?}").to_lowercase(),
                workload.label(),
                format!("{:?}", r.system).to_lowercase(),
                r.ops_per_s,
                r.p50_us,
                r.p99_us,
                r.p999_us
            );
        }
        if let (Some(e), Some(a)) = (by_system.get(&System::Etcd), by_system.get(&System::Aurora)) {
            let _ = writeln!(
                out,
                "{:<7} {:<27} {:<7} {:>9.1}× {:>9.1}× {:>9.1}× {:>9.1}×",
                "",
                "",
                "ratio",
                a.ops_per_s / e.ops_per_s,
                e.p50_us / a.p50_us,
                e.p99_us / a.p99_us,
                e.p999_us / a.p999_us
            );
        }
    }
    out
}

/// The latency-CDF picture: one panel per mode × workload, etcd and Aurora in each, log-scaled
/// latency so a 100× gap and both tails fit.
mod plot {
    use super::*;
    use plotters::prelude::*;
    use plotters::style::{register_font, FontStyle};

    /// Debian's fonts-dejavu-core (installed by the script): the ab_glyph backend needs font bytes.
    const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    pub fn cdf(rows: &BTreeMap<Row, BTreeMap<System, Result_>>, path: &Path) -> Result<(), String> {
        let font = std::fs::read(FONT_PATH).map_err(|e| {
            format!("cannot read {FONT_PATH} ({e}): install fonts-dejavu-core for the CDF picture")
        })?;
        register_font(
            "sans-serif",
            FontStyle::Normal,
            Box::leak(font.into_boxed_slice()),
        )
        .map_err(|_| format!("{FONT_PATH} is not a usable TrueType font"))?;
        let panels = rows.len().max(1);
        let columns = 3;
        let lines = panels.div_ceil(columns);
        let root = BitMapBackend::new(path, (1500, 450 * lines as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let areas = root.split_evenly((lines, columns));
        for (((mode, workload), by_system), area) in rows.iter().zip(areas.iter()) {
            let all = by_system
                .values()
                .flat_map(|r| r.cdf.iter().map(|&(_, us)| us));
            let max_us = all.clone().fold(1.0_f64, f64::max) * 1.5;
            let min_us = all.fold(f64::MAX, f64::min).max(1.0) / 1.5;
            let caption = format!("{} — {:?} mode", workload.label(), mode).to_lowercase();
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d((min_us..max_us).log_scale(), 0.0..1.0)
                .map_err(draw_error)?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|us| format!("{us:.0}"))
                .light_line_style(WHITE)
                .x_desc("latency (µs, log)")
                .y_desc("fraction of ops")
                .draw()
                .map_err(draw_error)?;
            for (system, r) in by_system {
                let color = match system {
                    System::Etcd => RED,
                    System::Aurora => BLUE,
                };
                let points = r.cdf.iter().map(|&(q, us)| (us.max(min_us), q));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(draw_error)?
                    .label(format!("{system:?} p50 {:.0} µs", r.p50_us).to_lowercase())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)
    }

    fn draw_error(e: impl std::fmt::Display) -> String {
        format!("cannot draw the CDF picture: {e}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Measure(args) => measure(args),
        Command::Report(args) => report(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("aurora-vs-etcd: {message}");
            ExitCode::FAILURE
        }
    }
}
