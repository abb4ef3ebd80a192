//! `aurora-chaos`: the clients and the history recorder of hack/chaos.sh.
//!
//! Several client threads, each with its own [`Client`] (so its own session and connection), run
//! put / get / cas on a few register keys and puts to unique keys while the script's nemesis
//! injects faults. Every operation is recorded in the checker's format (docs/HISTORY_FORMAT.md)
//! on one clock shared by all threads. When the workload ends the recorder waits for the script to
//! heal the cluster, then reads every register and every acknowledged unique key — those reads go
//! into the history too — and checks the history with [`aurora::lincheck`].
//!
//! Why unique keys besides the registers: a register's later writes hide its earlier ones, so the
//! final state alone cannot show that an acknowledged write survived a crash. A unique key written
//! once must still hold its value at the end; the checker sees that as a read after a completed
//! write, and the summary counts it separately so a lost write is named plainly.
//!
//! Outcomes: a write that returned an error is recorded `unknown` (it may have applied: the client
//! retries in its session, and a timeout says nothing), a cas whose compare failed is `fail`, a
//! failed read is `unknown` (it constrains nothing). Files written into `--out`: `started` (the
//! cluster serves; the nemesis may begin), `history.jsonl`, `summary.json`, `summary.txt`.
//!
//! Exit codes: 0 linearizable and no acknowledged write missing; 1 a violation or a missing write;
//! 2 the check was inconclusive or the run could not complete (cluster never served or never
//! recovered).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aurora::client::{parse_endpoints, Client, ClientError, ClientOptions, Consistency};
use aurora::lincheck::{check_with_stats, History, Limits, Op, OpKind, Outcome, Verdict};
use aurora::store::{Compare, CompareOp, CompareTarget, PutRequest, TxnOp, TxnRequest};
use clap::Parser;

/// Register keys the clients contend on; few, so operations overlap and the check has teeth.
const REGISTER_KEYS: u64 = 4;
/// How long the recorder waits for the first successful write before declaring the cluster dead.
const SERVE_WAIT: Duration = Duration::from_secs(60);
/// How long it waits for the script to heal the cluster after the workload.
const HEAL_WAIT: Duration = Duration::from_secs(300);
/// How long one final read may keep failing (the cluster re-electing after the last fault); each
/// key gets its own allowance, so many acknowledged keys never eat into it.
const FINAL_READ_WAIT: Duration = Duration::from_secs(60);
/// Upper bound on operations one client records, so a history always fits the checker's budget;
/// `--seconds × --rate-per-client` must stay below it.
const MAX_OPS_PER_CLIENT: usize = 1_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "aurora-chaos",
    about = "Clients and history recorder for hack/chaos.sh"
)]
struct Args {
    /// Client endpoints of the cluster, HOST:PORT,...
    #[arg(long)]
    endpoints: String,
    /// The cluster's `cluster_id` (every frame carries it).
    #[arg(long)]
    cluster_id: u64,
    /// Seconds of workload (the nemesis runs for the same time).
    #[arg(long)]
    seconds: u64,
    /// Concurrent clients, each with its own session and connection.
    #[arg(long, default_value_t = 5)]
    clients: u64,
    /// Seed of the workload's operation mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the history and the summary.
    #[arg(long)]
    out: PathBuf,
    /// The script creates this file once every fault is healed; the final reads wait for it.
    #[arg(long)]
    healed_file: PathBuf,
    /// Sabotage, to show the rig can fail: workload reads are served stale by one fixed node per
    /// client (`Consistency::Stale`), which is not linearizable; the run must then fail.
    #[arg(long)]
    stale_reads: bool,
    /// Per-request deadline, retries and failovers included.
    #[arg(long, default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Operations each client starts per second at most: enough concurrency for the faults to
    /// matter, histories small enough to check in seconds.
    #[arg(long, default_value_t = 500)]
    rate_per_client: u64,
}

/// splitmix64: a small seeded generator, enough to pick operations reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next() % n
    }
}

/// The one clock of the history: nanoseconds since the recorder started.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_ns(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).expect("a run lasts less than 584 years")
    }
}

/// What one client saw; merged into the history at the end.
#[derive(Default)]
struct Recorded {
    ops: Vec<Op>,
    /// Unique keys whose put was acknowledged, with the value written.
    acked: Vec<(String, String)>,
    /// Errors by kind, for the summary.
    errors: BTreeMap<&'static str, u64>,
}

fn error_kind(e: &ClientError) -> &'static str {
    match e {
        ClientError::Timeout { .. } => "timeout",
        ClientError::Unreachable { .. } => "unreachable",
        ClientError::Server(_) => "server",
        ClientError::Store(_) => "store",
        ClientError::Protocol { .. } => "protocol",
        _ => "other",
    }
}

fn options(args: &Args) -> Result<ClientOptions, String> {
    let endpoints = parse_endpoints(&args.endpoints).map_err(|e| e.to_string())?;
    let mut opts = ClientOptions::new(endpoints);
    opts.cluster_id = args.cluster_id;
    opts.request_timeout = Duration::from_millis(args.request_timeout_ms);
    opts.connect_timeout = Duration::from_millis(300);
    opts.attempt_timeout = Duration::from_millis(500);
    Ok(opts)
}

/// Connects, retrying while no node is reachable (a fault may be in force), until `deadline`.
fn connect(opts: &ClientOptions, deadline: Instant) -> Option<Client> {
    while Instant::now() < deadline {
        match Client::connect(opts.clone()) {
            Ok(client) => return Some(client),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    None
}

/// One recording client: a connection that is re-made when lost, and the operations it ran.
struct Recorder {
    id: u64,
    clock: Clock,
    opts: ClientOptions,
    client: Option<Client>,
    /// `--stale-reads` only: the pinned stale reader's options and connection.
    stale: Option<(ClientOptions, Option<Client>)>,
    out: Recorded,
}

impl Recorder {
    fn client(&mut self, deadline: Instant) -> Option<&mut Client> {
        if self.client.is_none() {
            self.client = connect(&self.opts, deadline);
        }
        self.client.as_mut()
    }

    /// The client reads go through: the stale reader under `--stale-reads`, else the main one.
    fn reader(&mut self, deadline: Instant) -> Option<&mut Client> {
        if self.stale.is_none() {
            return self.client(deadline);
        }
        let (opts, reader) = self.stale.as_mut().expect("checked above");
        if reader.is_none() {
            *reader = connect(opts, deadline);
        }
        reader.as_mut()
    }

    fn failed(&mut self, e: &ClientError) {
        *self.out.errors.entry(error_kind(e)).or_default() += 1;
        if e.is_retryable() {
            // Start over on a fresh connection; the client's own failover already tried the others.
            self.client = None;
            if let Some((_, reader)) = &mut self.stale {
                *reader = None;
            }
        }
    }

    fn push(&mut self, op: Op) {
        debug_assert!(op.complete_ns.is_none_or(|c| c >= op.invoke_ns));
        self.out.ops.push(op);
    }

    fn put(&mut self, key: &str, value: String, deadline: Instant) -> bool {
        let invoke_ns = self.clock.now_ns();
        let result = match self.client(deadline) {
            Some(c) => c.put(key.as_bytes(), value.as_bytes()).map(|_| ()),
            None => return false, // no request was sent: nothing to record
        };
        let complete_ns = self.clock.now_ns();
        let (outcome, complete_ns) = match &result {
            Ok(()) => (Outcome::Ok, Some(complete_ns)),
            Err(e) => {
                self.failed(e);
                (Outcome::Unknown, None)
            }
        };
        self.push(Op {
            client: self.id,
            kind: OpKind::Put,
            key: key.to_owned(),
            input: Some(value),
            expect: None,
            output: None,
            invoke_ns,
            complete_ns,
            outcome,
        });
        result.is_ok()
    }

    /// A linearizable read; returns what it read when it succeeded.
    fn get(&mut self, key: &str, deadline: Instant) -> Option<Option<String>> {
        let invoke_ns = self.clock.now_ns();
        let result = self.reader(deadline)?.get(key.as_bytes());
        let complete_ns = self.clock.now_ns();
        let read = match result {
            Ok(kv) => Some(kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned())),
            Err(e) => {
                self.failed(&e);
                None
            }
        };
        self.push(Op {
            client: self.id,
            kind: OpKind::Get,
            key: key.to_owned(),
            input: None,
            expect: None,
            output: read.clone().flatten(),
            invoke_ns,
            complete_ns: read.as_ref().map(|_| complete_ns),
            outcome: if read.is_some() {
                Outcome::Ok
            } else {
                Outcome::Unknown
            },
        });
        read
    }

    /// Compare-and-set as one transaction: if `key` holds `expect` (absent: never created), put.
    fn cas(&mut self, key: &str, expect: Option<String>, value: String, deadline: Instant) {
        let target = match &expect {
            Some(v) => CompareTarget::Value(v.clone().into_bytes()),
            None => CompareTarget::CreateRevision(0),
        };
        let txn = TxnRequest {
            compare: vec![Compare {
                key: key.as_bytes().to_vec(),
                op: CompareOp::Equal,
                target,
            }],
            success: vec![TxnOp::Put(PutRequest::new(key, value.as_bytes()))],
            failure: vec![],
        };
        let invoke_ns = self.clock.now_ns();
        let result = match self.client(deadline) {
            Some(c) => c.txn(txn),
            None => return,
        };
        let complete_ns = self.clock.now_ns();
        let (outcome, complete_ns) = match &result {
            Ok((_, reply)) if reply.succeeded => (Outcome::Ok, Some(complete_ns)),
            Ok(_) => (Outcome::Fail, Some(complete_ns)),
            Err(e) => {
                self.failed(e);
                (Outcome::Unknown, None)
            }
        };
        self.push(Op {
            client: self.id,
            kind: OpKind::Cas,
            key: key.to_owned(),
            input: Some(value),
            expect,
            output: None,
            invoke_ns,
            complete_ns,
            outcome,
        });
    }
}

fn register(i: u64) -> String {
    format!("chaos/r{i}")
}

/// The workload of one client until `end`: 35% get, 30% put, 20% cas, 15% unique-key put.
fn workload(recorder: &mut Recorder, seed: u64, end: Instant, rate_per_client: u64) {
    let mut rng = Rng(seed ^ recorder.id.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut last_read: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut seq = 0u64;
    let interval = Duration::from_secs(1) / u32::try_from(rate_per_client).unwrap_or(u32::MAX);
    let mut next_at = Instant::now();
    while Instant::now() < end {
        assert!(
            recorder.out.ops.len() < MAX_OPS_PER_CLIENT,
            "run() bounds seconds × rate"
        );
        // Pace to the rate; after a stall (a fault) carry on without a burst of catch-up.
        let now = Instant::now();
        if next_at > now {
            std::thread::sleep(next_at - now);
        }
        next_at = next_at.max(now) + interval;
        seq += 1;
        let value = format!("c{}-{seq}", recorder.id);
        let key = register(rng.below(REGISTER_KEYS));
        match rng.below(100) {
            0..35 => {
                if let Some(read) = recorder.get(&key, end) {
                    last_read.insert(key, read);
                }
            }
            35..65 => {
                recorder.put(&key, value, end);
            }
            65..85 => {
                let expect = last_read.get(&key).cloned().flatten();
                recorder.cas(&key, expect, value, end);
            }
            _ => {
                let unique = format!("chaos/u/c{}/{seq}", recorder.id);
                if recorder.put(&unique, value.clone(), end) {
                    recorder.out.acked.push((unique, value));
                }
            }
        }
    }
}

/// Reads `key` until a read succeeds or `deadline`; every attempt is recorded.
fn final_read(recorder: &mut Recorder, key: &str, deadline: Instant) -> Option<Option<String>> {
    while Instant::now() < deadline {
        if let Some(read) = recorder.get(key, deadline) {
            return Some(read);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Totals {
    /// Why the final reads stopped early, if the cluster did not serve them within the limit.
    unavailable: Option<String>,
    ops: usize,
    unknown: usize,
    acked_unique: usize,
    missing: Vec<String>,
    errors: BTreeMap<&'static str, u64>,
}

fn run(args: &Args) -> Result<ExitCode, String> {
    assert!(args.clients >= 1, "at least one client");
    if args.rate_per_client == 0
        || args.seconds.saturating_mul(args.rate_per_client) >= MAX_OPS_PER_CLIENT as u64
    {
        return Err(format!(
            "--seconds {} × --rate-per-client {} must be between 1 and {MAX_OPS_PER_CLIENT} operations \
             per client; lower the rate for a longer run",
            args.seconds, args.rate_per_client
        ));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let opts = options(args)?;
    let clock = Clock(Instant::now());

    // The cluster serves once a write goes through; only then may the nemesis begin.
    let mut probe = Recorder {
        id: 0,
        clock,
        opts: opts.clone(),
        client: None,
        stale: None,
        out: Recorded::default(),
    };
    let serve_deadline = Instant::now() + SERVE_WAIT;
    let mut attempt = 0u64;
    while {
        attempt += 1;
        !probe.put("chaos/ready", format!("probe-{attempt}"), serve_deadline)
    } {
        if Instant::now() >= serve_deadline {
            return Err(format!(
                "no write succeeded within {SERVE_WAIT:?}: the cluster never served"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    File::create(args.out.join("started")).map_err(|e| format!("cannot signal start: {e}"))?;
    eprintln!(
        "aurora-chaos: cluster serves; {} clients for {} s",
        args.clients, args.seconds
    );

    let end = Instant::now() + Duration::from_secs(args.seconds);
    let threads: Vec<_> = (1..=args.clients)
        .map(|id| {
            let (opts, seed, rate) = (opts.clone(), args.seed, args.rate_per_client);
            let stale = args.stale_reads.then(|| {
                let mut pinned = opts.clone();
                let node = (id as usize - 1) % opts.endpoints.len();
                pinned.endpoints = vec![opts.endpoints[node]];
                pinned.consistency = Consistency::Stale;
                (pinned, None)
            });
            std::thread::Builder::new()
                .name(format!("chaos-client-{id}"))
                .spawn(move || {
                    let mut recorder = Recorder {
                        id,
                        clock,
                        opts,
                        client: None,
                        stale,
                        out: Recorded::default(),
                    };
                    workload(&mut recorder, seed, end, rate);
                    recorder
                })
                .expect("spawning a client thread")
        })
        .collect();
    let mut recorders = vec![probe];
    for t in threads {
        recorders.push(
            t.join()
                .map_err(|_| "a client thread panicked".to_owned())?,
        );
    }

    if !wait_for_file(&args.healed_file, HEAL_WAIT) {
        return Err(format!(
            "{} did not appear within {HEAL_WAIT:?}",
            args.healed_file.display()
        ));
    }

    // Final reads by a fresh client: every register and every acknowledged unique key.
    let mut last = Recorder {
        id: args.clients + 1,
        clock,
        opts,
        client: None,
        stale: None,
        out: Recorded::default(),
    };
    // A cluster that cannot serve the final reads has lost availability, not necessarily safety:
    // the history recorded so far is still written and checked.
    let mut unavailable = None;
    for i in 0..REGISTER_KEYS {
        if final_read(&mut last, &register(i), Instant::now() + FINAL_READ_WAIT).is_none() {
            unavailable = Some(format!("the final read of {} never succeeded", register(i)));
            break;
        }
    }
    let acked: Vec<(String, String)> = recorders
        .iter()
        .flat_map(|r| r.out.acked.iter().cloned())
        .collect();
    let mut missing = Vec::new();
    for (key, value) in acked.iter().filter(|_| unavailable.is_none()) {
        let Some(read) = final_read(&mut last, key, Instant::now() + FINAL_READ_WAIT) else {
            unavailable = Some(format!("the final read of {key} never succeeded"));
            break;
        };
        if read.as_deref() != Some(value.as_str()) {
            missing.push(format!("{key} = {value:?} acknowledged, read {read:?}"));
        }
    }
    recorders.push(last);

    let mut history = History::new();
    let mut errors: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut ops: Vec<Op> = Vec::new();
    for r in &mut recorders {
        ops.append(&mut r.out.ops);
        for (kind, n) in &r.out.errors {
            *errors.entry(kind).or_default() += n;
        }
    }
    ops.sort_by_key(|op| op.invoke_ns);
    let unknown = ops
        .iter()
        .filter(|op| op.outcome == Outcome::Unknown)
        .count();
    for op in ops {
        history
            .push(op)
            .map_err(|e| format!("the recorder produced an invalid operation: {e}"))?;
    }
    let path = args.out.join("history.jsonl");
    let file = File::create(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut writer = BufWriter::new(file);
    history
        .to_jsonl(&mut writer)
        .and_then(|()| writer.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;

    let totals = Totals {
        unavailable,
        ops: history.len(),
        unknown,
        acked_unique: acked.len(),
        missing,
        errors,
    };
    let started = Instant::now();
    let report = check_with_stats(&history, &Limits::default());
    let check_ms = started.elapsed().as_millis();
    summarize(args, &totals, &report.verdict, check_ms)?;
    let violated =
        matches!(report.verdict, Verdict::Violation { .. }) || !totals.missing.is_empty();
    let complete = matches!(report.verdict, Verdict::Linearizable) && totals.unavailable.is_none();
    Ok(match (violated, complete) {
        (true, _) => ExitCode::from(1),
        (false, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(2),
    })
}

fn summarize(args: &Args, t: &Totals, verdict: &Verdict, check_ms: u128) -> Result<(), String> {
    let violations = usize::from(matches!(verdict, Verdict::Violation { .. }));
    let mut line = format!(
        "{} ops ({} unknown), {} violations{}, {}/{} acked unique writes present",
        t.ops,
        t.unknown,
        violations,
        if matches!(verdict, Verdict::Inconclusive { .. }) {
            " (check INCONCLUSIVE)"
        } else {
            ""
        },
        t.acked_unique - t.missing.len(),
        t.acked_unique
    );
    if let Some(reason) = &t.unavailable {
        line = format!(
            "{line} of those read; UNAVAILABLE after healing: {reason} within {FINAL_READ_WAIT:?}"
        );
    }
    println!("aurora-chaos: {line}; checked in {check_ms} ms");
    if !matches!(verdict, Verdict::Linearizable) {
        println!("{verdict}");
    }
    for m in t.missing.iter().take(20) {
        println!("  MISSING: {m}");
    }
    let json = serde_json::json!({
        "ops": t.ops,
        "unknown": t.unknown,
        "violations": violations,
        "verdict": verdict.to_string(),
        "acked_unique_writes": t.acked_unique,
        "missing_acked_writes": t.missing,
        "unavailable": t.unavailable,
        "client_errors": t.errors,
        "check_ms": check_ms,
        "seed": args.seed,
        "seconds": args.seconds,
        "clients": args.clients,
    });
    let write = |name: &str, text: String| {
        std::fs::write(args.out.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write(
        "summary.json",
        serde_json::to_string_pretty(&json).expect("summary serializes"),
    )?;
    write("summary.txt", line)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("aurora-chaos: {message}");
            ExitCode::from(2)
        }
    }
}
