//! `aurora check-history`: the verdict on standard output and in the exit code, which is what the
//! chaos tests rely on.

use std::io::Write;
use std::process::{Command, Output};

fn check_history(text: &str, extra: &[&str]) -> Output {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write history");
    Command::new(env!("CARGO_BIN_EXE_aurora"))
        .arg("check-history")
        .arg(file.path())
        .args(extra)
        .output()
        .expect("run aurora")
}

const PUT_A: &str = r#"{"client":1,"op":"put","key":"k","input":"a","expect":null,"output":null,"invoke_ns":0,"complete_ns":10,"outcome":"ok"}"#;

#[test]
fn linearizable_history_exits_zero() {
    let text = format!(
        "{PUT_A}\n{}\n",
        r#"{"client":2,"op":"get","key":"k","input":null,"expect":null,"output":"a","invoke_ns":20,"complete_ns":30,"outcome":"ok"}"#
    );
    let out = check_history(&text, &["--stats"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("linearizable\n"), "{stdout}");
    assert!(stdout.contains("key \"k\": 2 ops (0 dropped)"), "{stdout}");
}

#[test]
fn stale_read_exits_one_and_names_the_line() {
    let text = format!(
        "{PUT_A}\n{}\n",
        r#"{"client":2,"op":"get","key":"k","input":null,"expect":null,"output":null,"invoke_ns":20,"complete_ns":30,"outcome":"ok"}"#
    );
    let out = check_history(&text, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("NOT linearizable: key \"k\": line 2:"),
        "{stdout}"
    );
}

#[test]
fn malformed_history_exits_two_with_the_line() {
    let text = format!("{PUT_A}\n{{\"client\":1}}\n");
    let out = check_history(&text, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2, column"), "{stderr}");
    assert!(stderr.contains("missing field"), "{stderr}");
}

#[test]
fn exhausted_budget_exits_two() {
    let mut text = String::new();
    for client in 0..6 {
        text.push_str(&format!(
            "{{\"client\":{client},\"op\":\"put\",\"key\":\"k\",\"input\":\"{client}\",\"invoke_ns\":0,\"complete_ns\":100,\"outcome\":\"ok\"}}\n"
        ));
    }
    text.push_str(r#"{"client":9,"op":"get","key":"k","output":"0","invoke_ns":200,"complete_ns":300,"outcome":"ok"}"#);
    let out = check_history(&text, &["--max-steps-per-key", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("inconclusive: "), "{stdout}");
}
