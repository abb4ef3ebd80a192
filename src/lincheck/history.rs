//! A recorded client history: the operations, their real-time intervals and outcomes, and the JSON
//! Lines format they are stored in (docs/HISTORY_FORMAT.md is the contract).
//!
//! Every operation is validated when it enters a [`History`] (parsed or pushed), so the checker
//! never has to guess what a malformed record meant.

use std::fmt;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// The longest JSON line [`History::from_jsonl`] accepts: a record is a few hundred bytes, so a
/// longer line is a corrupt file, not a big operation, and must not be buffered without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Set the key's register to `input`.
    Put,
    /// Read the key's register; `output` is what was read (`None` = absent).
    Get,
    /// Set the register to `input` iff it currently equals `expect` (`None` = absent).
    Cas,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Cas => "cas",
        })
    }
}

/// What the client learned about its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The operation took effect (for `cas`: the swap happened) between invoke and completion.
    Ok,
    /// The operation definitely had no effect (for `cas`: the comparison failed; for `put`/`get`:
    /// rejected before it was proposed).
    Fail,
    /// The client never learned the result (timeout, crash): the operation took effect at some
    /// point after its invocation, or never.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        })
    }
}

/// One client operation on one key, with the real-time interval the client observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Who issued it; only used to name the operation in explanations.
    pub client: u64,
    pub kind: OpKind,
    pub key: String,
    /// The value written by `put` and `cas`; `None` for `get`.
    pub input: Option<String>,
    /// The value `cas` compares against (`None` = the key must be absent); `None` otherwise.
    pub expect: Option<String>,
    /// The value `get` read (`None` = absent); `None` for `put` and `cas`.
    pub output: Option<String>,
    /// When the client sent the request.
    pub invoke_ns: u64,
    /// When the client learned the outcome; `None` exactly when the outcome is `Unknown`.
    pub complete_ns: Option<u64>,
    pub outcome: Outcome,
}

impl fmt::Display for Op {
    /// A one-line rendering used in verdict explanations, e.g.
    /// `client 2 cas "k" "a" -> "b" fail [10, 20] ns`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} {} {:?}", self.client, self.kind, self.key)?;
        match self.kind {
            OpKind::Put => write!(f, " := {}", show(&self.input))?,
            OpKind::Get => write!(f, " -> {}", show(&self.output))?,
            OpKind::Cas => write!(f, " {} -> {}", show(&self.expect), show(&self.input))?,
        }
        match self.complete_ns {
            Some(complete_ns) => write!(
                f,
                " {} [{}, {}] ns",
                self.outcome, self.invoke_ns, complete_ns
            ),
            None => write!(f, " {} [{}, never] ns", self.outcome, self.invoke_ns),
        }
    }
}

/// Renders a register value: a quoted string, or `absent`.
pub(crate) fn show(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "absent".to_owned(),
    }
}

/// Why an operation or a line of a history file was rejected. Every variant names the line (for a
/// pushed operation: its position, which is its line in [`History::to_jsonl`]'s output).
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("line {line}: cannot read the history: {source}")]
    Io {
        line: usize,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "line {line}: longer than {MAX_LINE_BYTES} bytes; a history record is one short JSON object \
         per line — is this a history file?"
    )]
    LineTooLong { line: usize },
    #[error(
        "line {line}, column {column}: not a valid history record: {message}; expected one JSON \
         object per line as in docs/HISTORY_FORMAT.md"
    )]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("line {line}: field `{field}` is required for a {kind} operation: {why}")]
    MissingField {
        line: usize,
        field: &'static str,
        kind: OpKind,
        why: &'static str,
    },
    #[error(
        "line {line}: field `{field}` must be null or left out for a {kind} operation (got {value}): {why}"
    )]
    UnexpectedField {
        line: usize,
        field: &'static str,
        kind: OpKind,
        value: String,
        why: &'static str,
    },
    #[error(
        "line {line}: field `complete_ns` ({complete_ns}) is before `invoke_ns` ({invoke_ns}); an \
         operation cannot complete before it is invoked — check the clock the history was recorded with"
    )]
    CompleteBeforeInvoke {
        line: usize,
        invoke_ns: u64,
        complete_ns: u64,
    },
    #[error(
        "line {line}: field `complete_ns` is {complete_ns} but the outcome is \"unknown\"; an operation \
         whose outcome is unknown never completed: set `complete_ns` to null, or record the outcome"
    )]
    UnknownWithCompletion { line: usize, complete_ns: u64 },
    #[error(
        "line {line}: field `complete_ns` is null but the outcome is \"{outcome}\"; a client that learned \
         the outcome did so at some time: record it, or use outcome \"unknown\""
    )]
    MissingCompletion { line: usize, outcome: Outcome },
}

/// An ordered list of validated operations, each remembering the line it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Op>,
    lines: Vec<usize>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `op` after validating it; its line is its 1-based position.
    pub fn push(&mut self, op: Op) -> Result<(), HistoryError> {
        let line = self.ops.len() + 1;
        validate(&op, line)?;
        self.ops.push(op);
        self.lines.push(line);
        Ok(())
    }

    /// The operations, in the order they were recorded.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The line operation `index` came from (1-based).
    pub fn line_of(&self, index: usize) -> usize {
        self.lines[index]
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Reads a JSON Lines history: one record per line, blank lines ignored, every record validated.
    pub fn from_jsonl(mut reader: impl BufRead) -> Result<Self, HistoryError> {
        let mut history = Self::new();
        let mut buf = Vec::new();
        for line in 1.. {
            buf.clear();
            let limit = u64::try_from(MAX_LINE_BYTES + 1).expect("the line limit fits in u64");
            let read = Read::take(&mut reader, limit)
                .read_until(b'\n', &mut buf)
                .map_err(|source| HistoryError::Io { line, source })?;
            if read == 0 {
                break;
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(HistoryError::LineTooLong { line });
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let op = parse_record(&buf, line)?;
            validate(&op, line)?;
            history.ops.push(op);
            history.lines.push(line);
        }
        Ok(history)
    }

    /// Writes the history as JSON Lines, every field present (null where it does not apply).
    pub fn to_jsonl(&self, mut writer: impl Write) -> std::io::Result<()> {
        for op in &self.ops {
            let record = Record {
                client: op.client,
                op: op.kind,
                key: &op.key,
                input: op.input.as_deref(),
                expect: op.expect.as_deref(),
                output: op.output.as_deref(),
                invoke_ns: op.invoke_ns,
                complete_ns: op.complete_ns,
                outcome: op.outcome,
            };
            serde_json::to_writer(&mut writer, &record)?;
            writer.write_all(b"\n")?;
        }
        writer.flush()
    }
}

/// The on-disk shape of one operation, for writing.
#[derive(Serialize)]
struct Record<'a> {
    client: u64,
    op: OpKind,
    key: &'a str,
    input: Option<&'a str>,
    expect: Option<&'a str>,
    output: Option<&'a str>,
    invoke_ns: u64,
    complete_ns: Option<u64>,
    outcome: Outcome,
}

/// The on-disk shape of one operation, for reading: the nullable fields remember whether they were
/// present at all, because for `cas` a missing `expect` is an error while `"expect": null` means
/// "the key must be absent".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    client: u64,
    op: OpKind,
    key: String,
    #[serde(default, deserialize_with = "present")]
    input: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    expect: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    output: Option<Option<String>>,
    invoke_ns: u64,
    #[serde(default)]
    complete_ns: Option<u64>,
    outcome: Outcome,
}

/// Deserializes a field that is present (possibly `null`) as `Some(value)`; an absent field stays
/// at its `default` of `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn parse_record(buf: &[u8], line: usize) -> Result<Op, HistoryError> {
    let raw: RawRecord = serde_json::from_slice(buf).map_err(|e| {
        let mut message = e.to_string();
        // serde_json appends the position within the (single-line) input; we report our own line.
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        HistoryError::Json {
            line,
            column: e.column(),
            message,
        }
    })?;
    if raw.op == OpKind::Cas && raw.expect.is_none() {
        return Err(HistoryError::MissingField {
            line,
            field: "expect",
            kind: OpKind::Cas,
            why: "the value the register must hold for the swap (null = the key must be absent)",
        });
    }
    if raw.op == OpKind::Get && raw.outcome == Outcome::Ok && raw.output.is_none() {
        return Err(HistoryError::MissingField {
            line,
            field: "output",
            kind: OpKind::Get,
            why: "the value the read returned (null = the key was absent)",
        });
    }
    Ok(Op {
        client: raw.client,
        kind: raw.op,
        key: raw.key,
        input: raw.input.flatten(),
        expect: raw.expect.flatten(),
        output: raw.output.flatten(),
        invoke_ns: raw.invoke_ns,
        complete_ns: raw.complete_ns,
        outcome: raw.outcome,
    })
}

/// Checks the rules of docs/HISTORY_FORMAT.md that the types alone do not enforce.
fn validate(op: &Op, line: usize) -> Result<(), HistoryError> {
    match op.kind {
        OpKind::Put | OpKind::Cas => {
            if op.input.is_none() {
                return Err(HistoryError::MissingField {
                    line,
                    field: "input",
                    kind: op.kind,
                    why: "the value written (a string; deleting is not part of the model)",
                });
            }
            if op.kind == OpKind::Put {
                forbid(line, op, "expect", &op.expect, "only cas compares")?;
            }
            forbid(line, op, "output", &op.output, "only get returns a value")?;
        }
        OpKind::Get => {
            forbid(line, op, "input", &op.input, "get writes nothing")?;
            forbid(line, op, "expect", &op.expect, "only cas compares")?;
            if op.outcome != Outcome::Ok {
                forbid(
                    line,
                    op,
                    "output",
                    &op.output,
                    "a get that did not succeed returned nothing",
                )?;
            }
        }
    }
    match (op.outcome, op.complete_ns) {
        (Outcome::Unknown, Some(complete_ns)) => {
            Err(HistoryError::UnknownWithCompletion { line, complete_ns })
        }
        (Outcome::Ok | Outcome::Fail, None) => Err(HistoryError::MissingCompletion {
            line,
            outcome: op.outcome,
        }),
        (_, Some(complete_ns)) if complete_ns < op.invoke_ns => {
            Err(HistoryError::CompleteBeforeInvoke {
                line,
                invoke_ns: op.invoke_ns,
                complete_ns,
            })
        }
        _ => Ok(()),
    }
}

fn forbid(
    line: usize,
    op: &Op,
    field: &'static str,
    value: &Option<String>,
    why: &'static str,
) -> Result<(), HistoryError> {
    match value {
        None => Ok(()),
        Some(_) => Err(HistoryError::UnexpectedField {
            line,
            field,
            kind: op.kind,
            value: show(value),
            why,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<History, HistoryError> {
        History::from_jsonl(text.as_bytes())
    }

    #[test]
    fn round_trips_through_jsonl() {
        let text = concat!(
            r#"{"client":1,"op":"put","key":"k","input":"a","expect":null,"output":null,"invoke_ns":10,"complete_ns":20,"outcome":"ok"}"#,
            "\n",
            r#"{"client":2,"op":"cas","key":"k","input":"b","expect":null,"output":null,"invoke_ns":15,"complete_ns":null,"outcome":"unknown"}"#,
            "\n",
            r#"{"client":3,"op":"get","key":"k","input":null,"expect":null,"output":"a","invoke_ns":21,"complete_ns":30,"outcome":"ok"}"#,
            "\n",
        );
        let history = parse(text).expect("valid history");
        assert_eq!(history.len(), 3);
        assert_eq!(history.ops()[1].expect, None);
        assert_eq!(history.ops()[1].kind, OpKind::Cas);
        let mut out = Vec::new();
        history.to_jsonl(&mut out).expect("writing to memory");
        assert_eq!(String::from_utf8(out).expect("utf-8"), text);
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let text = "\n\n{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"invoke_ns\":1,\"complete_ns\":2,\"outcome\":\"fail\"}\n";
        let history = parse(text).expect("valid history");
        assert_eq!(history.line_of(0), 3);
    }

    #[test]
    fn bad_json_names_the_line_and_column() {
        let text = "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"output\":null,\"invoke_ns\":1,\"complete_ns\":2,\"outcome\":\"ok\"}\n{\"client\":1,\n";
        let err = parse(text).unwrap_err();
        assert!(matches!(err, HistoryError::Json { line: 2, .. }), "{err}");
        assert!(err.to_string().starts_with("line 2, column "), "{err}");
    }

    #[test]
    fn unknown_field_is_named() {
        let text = r#"{"client":1,"op":"get","key":"k","output":null,"invoke_ns":1,"complete_ns":2,"outcome":"ok","value":"x"}"#;
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("unknown field `value`"), "{err}");
    }

    #[test]
    fn cas_without_expect_is_rejected() {
        let text = r#"{"client":1,"op":"cas","key":"k","input":"b","invoke_ns":1,"complete_ns":2,"outcome":"ok"}"#;
        let err = parse(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: field `expect` is required for a cas operation: the value the register must hold \
             for the swap (null = the key must be absent)"
        );
    }

    #[test]
    fn successful_get_without_output_is_rejected() {
        let text =
            r#"{"client":1,"op":"get","key":"k","invoke_ns":1,"complete_ns":2,"outcome":"ok"}"#;
        assert!(matches!(
            parse(text).unwrap_err(),
            HistoryError::MissingField {
                line: 1,
                field: "output",
                ..
            }
        ));
    }

    #[test]
    fn complete_before_invoke_is_rejected() {
        let text = r#"{"client":1,"op":"put","key":"k","input":"a","invoke_ns":20,"complete_ns":10,"outcome":"ok"}"#;
        let err = parse(text).unwrap_err();
        assert!(matches!(
            err,
            HistoryError::CompleteBeforeInvoke {
                line: 1,
                invoke_ns: 20,
                complete_ns: 10
            }
        ));
    }

    #[test]
    fn unknown_outcome_with_completion_is_rejected() {
        let text = r#"{"client":1,"op":"put","key":"k","input":"a","invoke_ns":1,"complete_ns":5,"outcome":"unknown"}"#;
        assert!(matches!(
            parse(text).unwrap_err(),
            HistoryError::UnknownWithCompletion {
                line: 1,
                complete_ns: 5
            }
        ));
    }

    #[test]
    fn known_outcome_without_completion_is_rejected() {
        let text = r#"{"client":1,"op":"put","key":"k","input":"a","invoke_ns":1,"complete_ns":null,"outcome":"ok"}"#;
        assert!(matches!(
            parse(text).unwrap_err(),
            HistoryError::MissingCompletion {
                line: 1,
                outcome: Outcome::Ok
            }
        ));
    }

    #[test]
    fn put_without_input_and_get_with_input_are_rejected() {
        let put = r#"{"client":1,"op":"put","key":"k","input":null,"invoke_ns":1,"complete_ns":2,"outcome":"ok"}"#;
        assert!(matches!(
            parse(put).unwrap_err(),
            HistoryError::MissingField { field: "input", .. }
        ));
        let get = r#"{"client":1,"op":"get","key":"k","input":"x","output":null,"invoke_ns":1,"complete_ns":2,"outcome":"ok"}"#;
        assert!(matches!(
            parse(get).unwrap_err(),
            HistoryError::UnexpectedField { field: "input", .. }
        ));
    }

    #[test]
    fn pushed_ops_are_validated_and_numbered_by_position() {
        let mut history = History::new();
        let op = Op {
            client: 1,
            kind: OpKind::Put,
            key: "k".into(),
            input: Some("a".into()),
            expect: None,
            output: None,
            invoke_ns: 5,
            complete_ns: Some(6),
            outcome: Outcome::Ok,
        };
        history.push(op.clone()).expect("valid op");
        let err = history
            .push(Op {
                complete_ns: None,
                ..op
            })
            .unwrap_err();
        assert!(matches!(
            err,
            HistoryError::MissingCompletion { line: 2, .. }
        ));
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn overlong_line_is_rejected_without_buffering_it_all() {
        let text = "x".repeat(MAX_LINE_BYTES + 10);
        assert!(matches!(
            parse(&text).unwrap_err(),
            HistoryError::LineTooLong { line: 1 }
        ));
    }
}
