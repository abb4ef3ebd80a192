//! `aurora up` as a user runs it: starts a local cluster, prints endpoints and the leader, serves
//! CLI commands, and stops every node on Ctrl-C (SIGINT), exiting 0.

mod local_cluster;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use local_cluster::aurora_bin;

#[test]
fn up_starts_a_cluster_that_serves_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut up = Command::new(aurora_bin())
        .args([
            "up",
            "--nodes",
            "3",
            "--durability",
            "memory",
            "--base-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("aurora up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut endpoints = None;
    let mut pids = Vec::new();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        printed.push(line.clone());
        if let Some(e) = line.strip_prefix("export AURORA_ENDPOINTS=") {
            endpoints = Some(e.to_owned());
        }
        if let Some(rest) = line.trim().strip_prefix("node ") {
            if let Some(pid) = rest.split("pid ").nth(1) {
                pids.push(pid.split_whitespace().next().expect("pid").to_owned());
            }
        }
        if line.starts_with("leader: node ") || line.contains("no leader") {
            break;
        }
    }
    let endpoints = endpoints.unwrap_or_else(|| panic!("no endpoints in {printed:#?}"));
    assert_eq!(pids.len(), 3, "{printed:#?}");
    assert!(
        printed
            .last()
            .is_some_and(|l| l.starts_with("leader: node ")),
        "{printed:#?}"
    );
    assert!(printed
        .iter()
        .any(|l| l.contains("admin http://127.0.0.1:")));

    let cli = |args: &[&str]| {
        Command::new(aurora_bin())
            .args(args)
            .env("AURORA_ENDPOINTS", &endpoints)
            .output()
            .expect("cli")
    };
    assert!(cli(&["put", "tour", "works"]).status.success());
    let got = cli(&["get", "tour"]);
    assert!(String::from_utf8_lossy(&got.stdout).contains("tour = works"));

    // Ctrl-C: SIGINT to `aurora up` (a terminal would send it to the children too).
    let pid = libc::pid_t::try_from(up.id()).expect("pid");
    // SAFETY: kill(2) has no memory-safety preconditions; `up` is our unreaped child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = up.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "aurora up did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "exit {status}; output {rest:#?}");
    assert!(
        rest.iter().any(|l| l.starts_with("aurora up: stopped")),
        "{rest:#?}"
    );
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node pid {pid} still exists after aurora up stopped"
        );
    }
}
