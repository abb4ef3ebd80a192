//! Admin HTTP on its own thread (tiny_http; no hand-written HTTP parsing): `/metrics` (Prometheus
//! text: HDR quantiles of commit latency, replication RTT per peer, fsync and apply time, plus the
//! node's counters), `/status` (JSON), `/health` (200 when the node serves, 503 with the reason
//! otherwise).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::status::{Shared, StatusSnapshot};
use crate::metrics::{Collector, Schema, ShardLink};

/// The loop's half of the metrics exchange, handed to the admin thread.
pub struct MetricsLink {
    pub schema: Arc<Schema>,
    pub link: ShardLink,
}

impl std::fmt::Debug for MetricsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsLink")
    }
}

/// How long one wait for a request lasts before the stop flag is checked again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Serves until `stop` is raised.
pub fn serve(
    server: tiny_http::Server,
    shared: Arc<Shared>,
    metrics: MetricsLink,
    stop: Arc<AtomicBool>,
) {
    let mut collector = Collector::new(&metrics.schema);
    if let Err(e) = collector.attach(metrics.link) {
        tracing::error!(error = %e, "metrics collector could not attach; /metrics shows no histograms");
    }
    while !stop.load(Ordering::Acquire) {
        // Collect on every wake-up, not only on a scrape: the loop publishes into a fixed number of
        // spare intervals and defers (keeps accumulating) while they are all full, so a collector
        // that waits for a scrape would hand its first scrape only the oldest intervals.
        collector.collect();
        let request = match server.recv_timeout(POLL_INTERVAL) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "admin HTTP receive failed");
                continue;
            }
        };
        let path = request.url().split('?').next().unwrap_or("").to_owned();
        let status = shared.status();
        let (code, content_type, body) = match path.as_str() {
            "/metrics" => {
                collector.collect();
                let mut body = String::new();
                collector.render_prometheus(&mut body);
                if let Some(s) = &status {
                    render_counters(s, &mut body);
                }
                (200, "text/plain; version=0.0.4", body)
            }
            "/status" => match &status {
                Some(s) => (200, "application/json", status_json(s).to_string()),
                None => (503, "text/plain", "starting\n".to_owned()),
            },
            "/health" => match health(status.as_ref()) {
                Ok(()) => (200, "text/plain", "ok\n".to_owned()),
                Err(why) => (503, "text/plain", format!("unavailable: {why}\n")),
            },
            _ => (
                404,
                "text/plain",
                "not found; try /metrics, /status or /health\n".to_owned(),
            ),
        };
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
            .expect("static header is valid");
        let response = tiny_http::Response::from_string(body)
            .with_status_code(code)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "admin HTTP client went away");
        }
    }
}

fn health(status: Option<&StatusSnapshot>) -> Result<(), &'static str> {
    let s = status.ok_or("starting")?;
    if s.recovering {
        return Err("recovering (memory mode): catching up with the leader");
    }
    if s.node.leader == 0 {
        return Err("no leader known");
    }
    Ok(())
}

/// `/status` as JSON.
pub fn status_json(s: &StatusSnapshot) -> serde_json::Value {
    let n = &s.node;
    let peers: Vec<serde_json::Value> = s
        .peers
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id,
                "connected": p.connected,
                "matched": p.matched,
                "lag": p.lag,
            })
        })
        .collect();
    serde_json::json!({
        "node_id": n.node_id,
        "role": n.role.as_str(),
        "term": n.term,
        "leader": if n.leader == 0 { None } else { Some(n.leader) },
        "leader_client_addr": if n.leader_client_addr.is_empty() { None } else { Some(n.leader_client_addr.clone()) },
        "commit_index": n.commit_index,
        "applied_index": n.applied_index,
        "revision": n.revision,
        "durability": n.durability.to_string(),
        "transport": s.transport,
        "recovering": s.recovering,
        "peers": peers,
        "clients_open": s.clients_open,
        "pending_writes": s.pending_writes,
        "pending_reads": s.pending_reads,
        "watches": s.watches,
        "ring": {
            "frames_written": s.counters.ring.frames_written,
            "frames_delivered": s.counters.ring.frames_delivered,
            "fallbacks": s.counters.ring.fallbacks,
            "grants_issued": s.counters.ring.grants_issued,
            "grants_accepted": s.counters.ring.grants_accepted,
            "frames_rejected": s.counters.ring.frames_rejected,
        },
    })
}

fn render_counters(s: &StatusSnapshot, out: &mut String) {
    let c = &s.client_stats;
    let k = &s.counters;
    let counters: [(&str, &str, u64); 17] = [
        (
            "aurora_clients_accepted_total",
            "Client connections accepted.",
            c.accepted,
        ),
        (
            "aurora_clients_refused_total",
            "Client connections refused at max_clients.",
            c.refused_full,
        ),
        (
            "aurora_clients_bad_frames_total",
            "Client connections closed for a bad frame.",
            c.bad_frames,
        ),
        (
            "aurora_clients_slow_dropped_total",
            "Client connections closed because they did not read their answers.",
            c.slow_client_drops,
        ),
        (
            "aurora_client_errors_total",
            "Requests answered with an error.",
            k.errors_answered,
        ),
        (
            "aurora_client_answers_dropped_total",
            "Answers for connections that had closed.",
            k.answers_dropped,
        ),
        (
            "aurora_peer_bad_messages_total",
            "Consensus messages (or pieces of one) that did not decode or reassemble.",
            k.bad_peer_messages,
        ),
        (
            "aurora_peer_frames_in_pieces_total",
            "Consensus frames larger than one transport slab, sent in pieces.",
            k.peer_frames_in_pieces,
        ),
        (
            "aurora_peer_sends_dropped_total",
            "Consensus messages not sent (Raft retries).",
            k.peer_sends_dropped,
        ),
        (
            "aurora_votes_withheld_total",
            "Votes withheld while recovering in memory mode.",
            k.votes_withheld,
        ),
        (
            "aurora_snapshots_refused_total",
            "InstallSnapshot messages not sent (no bytes held) or chunks dropped (gap, malformed).",
            k.snapshots_refused,
        ),
        (
            "aurora_snapshots_saved_total",
            "Snapshots made durable by this node (log and WAL compacted up to them).",
            k.snapshots_saved,
        ),
        (
            "aurora_snapshots_installed_total",
            "Snapshots installed from a leader (this node was behind its compaction point).",
            k.snapshots_installed,
        ),
        (
            "aurora_snapshot_failures_total",
            "Snapshot saves that failed (the log is kept until the next one).",
            k.snapshot_failures,
        ),
        (
            "aurora_leases_expired_total",
            "Lease expiries proposed by this leader.",
            k.leases_expired,
        ),
        (
            "aurora_wal_fdatasyncs_total",
            "WAL fdatasyncs issued.",
            s.wal.fdatasyncs,
        ),
        (
            "aurora_wal_batches_total",
            "WAL batches written.",
            s.wal.batches_written,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let gauges: [(&str, &str, u64); 8] = [
        ("aurora_term", "Current consensus term.", s.node.term),
        ("aurora_commit_index", "Commit index.", s.node.commit_index),
        (
            "aurora_applied_index",
            "Applied index.",
            s.node.applied_index,
        ),
        (
            "aurora_is_leader",
            "1 on the leader.",
            u64::from(s.node.role == super::protocol::NodeRole::Leader),
        ),
        (
            "aurora_clients_open",
            "Open client connections.",
            s.clients_open as u64,
        ),
        ("aurora_watches", "Active watches.", s.watches as u64),
        (
            "aurora_snapshot_index",
            "Index of the newest durable snapshot.",
            k.snapshot_index,
        ),
        (
            "aurora_snapshot_encode_ns_last",
            "Loop time spent encoding the newest snapshot.",
            k.snapshot_encode_ns_last,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}
