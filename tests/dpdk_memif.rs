//! The DPDK transport on a real DPDK device: two `aurora dpdk-ping` processes over a `net_memif`
//! pair (no hugepages needed: `--no-huge`), clean and with the test-only drop knob on both sides,
//! and EAL start-up failures reported as one clear error. Feature `dpdk`; run by hack/dpdk-rig.sh.
#![cfg(feature = "dpdk")]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EAL: [&str; 4] = [
    "--eal-arg=--no-huge",
    "--eal-arg=-m",
    "--eal-arg=256",
    "--eal-arg=--no-pci",
];

fn aurora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aurora"))
}

fn socket(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("aurora-test-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn side(role: &str, vdev: String, prefix: &str, extra: &[&str]) -> Command {
    let mut cmd = aurora();
    cmd.args([
        "dpdk-ping",
        "--role",
        role,
        "--vdev",
        &vdev,
        "--file-prefix",
        prefix,
    ])
    .args(EAL)
    .args(["--timeout-ms", "20000"])
    .args(extra);
    cmd
}

/// Waits for `child` with a bound; kills it past the bound.
fn wait(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait on child").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "process did not finish in {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a server and a client over one memif socket; returns the client's JSON report.
fn ping_pong(
    name: &str,
    round_trips: &str,
    server_extra: &[&str],
    client_extra: &[&str],
) -> serde_json::Value {
    let sock = socket(name);
    let sock = sock.display();
    let mut common = vec!["--round-trips", round_trips, "--warmup", "100"];
    let server = side(
        "server",
        format!("net_memif0,role=server,socket={sock},socket-abstract=no"),
        &format!("t-{name}-s"),
        &[common.as_slice(), server_extra].concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn server");
    // memif: the server must own the socket before the client connects (EAL start-up takes
    // seconds on a loaded machine).
    let start = Instant::now();
    while !std::path::Path::new(&sock.to_string()).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the memif server never made its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    common.extend_from_slice(client_extra);
    let client = side(
        "client",
        format!("net_memif0,role=client,socket={sock},socket-abstract=no"),
        &format!("t-{name}-c"),
        &common,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn client");
    let client = wait(client, Duration::from_secs(120));
    let server = wait(server, Duration::from_secs(30));
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        client.status.success(),
        "client failed:\n{}",
        stderr(&client)
    );
    assert!(
        server.status.success(),
        "server failed:\n{}",
        stderr(&server)
    );
    let stdout = String::from_utf8_lossy(&client.stdout);
    let line = stdout
        .lines()
        .last()
        .expect("the client prints one JSON line");
    serde_json::from_str(line).expect("valid JSON")
}

#[test]
fn memif_pair_carries_every_ping_in_order_and_intact() {
    let report = ping_pong("clean", "20000", &[], &[]);
    assert_eq!(report["round_trips"], 20000);
    // The client checked every Pong (order, correlation, payload). Retransmissions may still
    // happen: a descheduled process on a shared box outlasts the 2 ms timeout; they show up as
    // duplicates only, never as damaged or foreign frames.
    let drops = report["drops"].as_object().expect("drops map");
    assert!(drops.keys().all(|k| k == "duplicate"), "{report}");
    assert!(report["p50_ns"].as_u64().unwrap() > 0);
}

#[test]
fn memif_pair_with_loss_on_both_sides_still_completes_every_round_trip() {
    let report = ping_pong(
        "lossy",
        "3000",
        &["--test-drop-one-in", "7"],
        &["--test-drop-one-in", "5"],
    );
    assert_eq!(report["round_trips"], 3000);
    assert!(report["test_dropped"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["retransmitted_frames"].as_u64().unwrap() > 0,
        "{report}"
    );
}

fn eal_error(vdev: &str, eal: &[&str]) -> String {
    let out = aurora()
        .args([
            "dpdk-ping",
            "--role",
            "server",
            "--vdev",
            vdev,
            "--file-prefix",
            "t-err",
        ])
        .args(eal)
        .args(["--timeout-ms", "1000"])
        .output()
        .expect("run aurora");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .rfind(|l| l.starts_with("dpdk-ping"))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"))
        .to_string()
}

#[test]
fn eal_failures_are_one_clear_error_naming_the_cause() {
    let msg = eal_error("net_memfi0,role=server", &["--eal-arg=--no-huge"]);
    assert!(
        msg.contains("names driver \"net_memfi\"") && msg.contains("net_memif"),
        "{msg}"
    );
    let msg = eal_error(
        "net_memif0,role=server",
        &["--eal-arg=--no-huge", "--eal-arg=--bogus"],
    );
    assert!(
        msg.contains("Invalid argument") && msg.contains("--bogus"),
        "{msg}"
    );
    let hugepages: u64 = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if hugepages == 0 {
        let msg = eal_error("net_memif0,role=server", &[]);
        assert!(msg.contains("no hugepages are reserved"), "{msg}");
    }
}
