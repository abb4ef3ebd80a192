//! A linearizability checker for client histories of the KV store, modelled as one register per key.
//!
//! Histories come from the deterministic simulator, the real-process chaos tests, or a file in the
//! JSON Lines format of docs/HISTORY_FORMAT.md (`aurora check-history FILE`). The checker is
//! porcupine's algorithm: partition by key (linearizability is compositional), then for each key a
//! Wing–Gong search with Lowe's just-in-time linearization and a memo of explored
//! (linearized set, register value) states. Operations of unknown outcome (timeouts, crashes) may take
//! effect at any point after their invocation, or never.
//!
//! ```
//! use aurora::lincheck::{check, History, Limits};
//! let history = History::from_jsonl(concat!(
//!     r#"{"client":1,"op":"put","key":"k","input":"a","invoke_ns":0,"complete_ns":10,"outcome":"ok"}"#, "\n",
//!     r#"{"client":2,"op":"get","key":"k","output":null,"invoke_ns":20,"complete_ns":30,"outcome":"ok"}"#, "\n",
//! ).as_bytes()).expect("well-formed history");
//! let verdict = check(&history, &Limits::default());
//! assert!(!verdict.is_linearizable(), "the read started after the write completed: a stale read");
//! ```

mod check;
mod history;
mod register;
mod search;

pub use check::{check, check_with_stats, KeyStats, Report, Verdict, MAX_OPS_PER_KEY};
pub use history::{History, HistoryError, Op, OpKind, Outcome, MAX_LINE_BYTES};
pub use search::{Limits, SearchStats};
