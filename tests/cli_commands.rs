//! Every client command of the `aurora` CLI against a real 3-node cluster, as a user types them:
//! put, get, del, range, txn, watch, lease, lock, barrier, counter, status, health — checking what
//! they print and their exit codes, and that errors are one line naming the cause.

mod local_cluster;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aurora::cli::up::{DurabilityArg, LOCAL_CLUSTER_ID};
use local_cluster::{aurora_bin, LocalCluster};

fn lease_id(granted: &str) -> String {
    // "lease 0x2a granted with TTL 10000 ms"
    granted
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no lease id in {granted:?}"))
        .to_owned()
}

#[test]
fn every_cli_command_works_against_a_cluster() {
    let cluster = LocalCluster::start(3, DurabilityArg::Memory);

    // put / get / range / del
    assert!(cluster
        .cli_ok(&["put", "greeting", "hello world"])
        .starts_with("OK (revision "));
    let got = cluster.cli_ok(&["get", "greeting"]);
    assert!(got.starts_with("greeting = hello world  (create="), "{got}");
    cluster.cli_ok(&["put", "job/1", "queued"]);
    cluster.cli_ok(&["put", "job/2", "running"]);
    let prefix = cluster.cli_ok(&["get", "job/", "--prefix", "--keys-only"]);
    assert_eq!(prefix, "job/1\njob/2\n");
    let range = cluster.cli_ok(&["range", "job/1", "job/2"]);
    assert!(
        range.starts_with("job/1 = queued") && !range.contains("job/2"),
        "{range}"
    );
    assert_eq!(cluster.cli_ok(&["range", "job/", "--count-only"]), "2\n");
    // A stale read may be served by a follower that has not applied the put yet: found or not.
    let stale = cluster.cli(&["get", "job/2", "--stale"]);
    let text = String::from_utf8_lossy(&stale.stdout);
    match stale.status.code() {
        Some(0) => assert!(text.contains("running"), "{text}"),
        Some(1) => assert!(text.is_empty(), "{text}"),
        other => panic!("stale get exited {other:?}"),
    }
    let deleted = cluster.cli_ok(&["del", "job/", "--prefix"]);
    assert!(deleted.starts_with("deleted 2 "), "{deleted}");
    let missing = cluster.cli(&["get", "job/1"]);
    assert_eq!(missing.status.code(), Some(1), "a missing key exits 1");

    // txn: compare-and-swap, then a failing compare that runs the else branch
    let ok = cluster.cli_ok(&[
        "txn",
        "--if",
        "value(greeting) = hello world",
        "--then",
        "put greeting bonjour",
        "--else",
        "get greeting",
    ]);
    assert!(ok.starts_with("SUCCEEDED"), "{ok}");
    let failed = cluster.cli_ok(&[
        "txn",
        "--if",
        "value(greeting) = hello world",
        "--then",
        "put greeting never",
        "--else",
        "get greeting",
    ]);
    assert!(
        failed.starts_with("FAILED") && failed.contains("bonjour"),
        "{failed}"
    );
    let bad = cluster.cli(&["txn", "--if", "size(greeting) > 1"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("target must be") && err.lines().count() == 1,
        "{err}"
    );

    // counter
    assert_eq!(cluster.cli_ok(&["counter", "jobs"]), "0\n");
    assert_eq!(
        cluster.cli_ok(&["counter", "jobs", "--add", "5"]),
        "5 (was 0)\n"
    );
    assert_eq!(
        cluster.cli_ok(&["counter", "jobs", "--add", "-2"]),
        "3 (was 5)\n"
    );

    // lease: grant, attach a key, ttl, keep-alive, list, revoke (the key vanishes)
    let granted = cluster.cli_ok(&["lease", "grant", "60000"]);
    let id = lease_id(&granted);
    cluster.cli_ok(&["put", "ephemeral", "x", "--lease", &id]);
    let ttl = cluster.cli_ok(&["lease", "ttl", &id, "--keys"]);
    assert!(ttl.contains("60000") && ttl.contains("ephemeral"), "{ttl}");
    let renewed = cluster.cli_ok(&["lease", "keep-alive", &id, "--count", "1"]);
    assert!(renewed.contains("renewed"), "{renewed}");
    assert!(cluster.cli_ok(&["lease", "list"]).contains(&id));
    let revoked = cluster.cli_ok(&["lease", "revoke", &id]);
    assert!(revoked.contains("1 key(s) deleted"), "{revoked}");
    assert_eq!(cluster.cli(&["get", "ephemeral"]).status.code(), Some(1));

    // lock: run a command while holding it; the token reaches the command
    let locked = cluster.cli_ok(&[
        "lock",
        "printer",
        "--",
        "sh",
        "-c",
        "echo token=$AURORA_LOCK_TOKEN",
    ]);
    assert!(
        locked.contains("locked printer (fencing token "),
        "{locked}"
    );
    assert!(
        locked.contains("token=") && locked.contains("unlocked printer"),
        "{locked}"
    );
    let held = cluster.cli_ok(&["lock", "printer", "--hold-ms", "200"]);
    assert!(held.contains("unlocked printer"), "{held}");

    // barrier: two members; the first waits until the second arrives
    let first = Command::new(aurora_bin())
        .args(["barrier", "stage-1", "2", "--wait-ms", "20000"])
        .env("AURORA_ENDPOINTS", cluster.endpoints())
        .env("AURORA_CLUSTER_ID", format!("{LOCAL_CLUSTER_ID:#x}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("first member");
    std::thread::sleep(Duration::from_millis(500));
    let second = cluster.cli_ok(&["barrier", "stage-1", "2", "--wait-ms", "20000"]);
    assert!(second.contains("released: all 2 arrived"), "{second}");
    let first = first.wait_with_output().expect("first member ends");
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("released"));

    // watch: sees changes made after it started, then exits after --count events
    let mut watch = Command::new(aurora_bin())
        .args(["watch", "cfg/", "--prefix", "--count", "2"])
        .env("AURORA_ENDPOINTS", cluster.endpoints())
        .env("AURORA_CLUSTER_ID", format!("{LOCAL_CLUSTER_ID:#x}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    let mut ready = String::new();
    BufReader::new(watch.stderr.take().expect("stderr"))
        .read_line(&mut ready)
        .expect("watch says it is watching");
    assert!(ready.starts_with("watching cfg/"), "{ready}");
    cluster.cli_ok(&["put", "cfg/a", "1"]);
    cluster.cli_ok(&["del", "cfg/a"]);
    let out = watch.wait_with_output().expect("watch ends after 2 events");
    let lines = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("PUT cfg/a = 1"), "{lines:?}");
    assert!(lines[1].starts_with("DELETE cfg/a"), "{lines:?}");

    // status and health
    let status = cluster.cli_ok(&["status"]);
    assert_eq!(status.lines().count(), 4, "header + 3 nodes: {status}");
    let leaders = status
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("leader"))
        .count();
    assert_eq!(leaders, 1, "{status}");
    assert!(status.contains("memory"), "{status}");
    let json = cluster.cli_ok(&["status", "--json"]);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON per line");
        assert_eq!(v["durability"], "memory");
    }
    assert!(cluster
        .cli_ok(&["health"])
        .starts_with("healthy: leader node "));
}

#[test]
fn cli_errors_are_one_line_naming_cause_and_fix() {
    let out = Command::new(aurora_bin())
        .args([
            "get",
            "k",
            "--endpoints",
            "127.0.0.1:1",
            "--timeout-ms",
            "500",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("127.0.0.1:1") && err.contains("aurora up"),
        "{err}"
    );

    let out = Command::new(aurora_bin())
        .args(["put", "k", "v", "--endpoints", "nonsense"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nonsense") && err.contains("HOST:PORT"),
        "{err}"
    );

    let out = Command::new(aurora_bin())
        .args(["lease", "revoke", "not-a-lease"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lease grant"));
}
