//! `aurora txn --if COMPARE… --then OP… --else OP…`: one mini-transaction from the command line.
//!
//! ```text
//!  COMPARE:  value(KEY) = TEXT | version(KEY) > 3 | create(KEY) = 0 | mod(KEY) < 42 | lease(KEY) != 7
//!            (operators: = != < >)
//!  OP:       put KEY VALUE… | get KEY | get --prefix KEY | del KEY | del --prefix KEY
//! ```
//!
//! A value is the rest of the op after the key, so it may contain spaces. Prints `SUCCEEDED` or
//! `FAILED` (whether the compares held), then one line per op reply.

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::print::print_kv;
use crate::store::{
    Compare, CompareOp, CompareTarget, DeleteRangeRequest, KeyRange, OpReply, PutRequest,
    RangeRequest, TxnOp, TxnRequest,
};

#[derive(Debug, Args)]
pub struct TxnArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A condition, e.g. `value(config) = v1` or `version(job/7) = 0`; all must hold.
    #[arg(long = "if", value_name = "COMPARE")]
    pub compare: Vec<String>,
    /// An op run when every condition holds: `put K V`, `get K`, `del K` (`--prefix` after get/del).
    #[arg(long = "then", value_name = "OP")]
    pub success: Vec<String>,
    /// An op run otherwise.
    #[arg(long = "else", value_name = "OP")]
    pub failure: Vec<String>,
}

/// Text that is not a compare or an op, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    text: String,
    reason: &'static str,
}

pub fn parse(args: &TxnArgs) -> Result<TxnRequest, ParseError> {
    Ok(TxnRequest {
        compare: args
            .compare
            .iter()
            .map(|c| parse_compare(c))
            .collect::<Result<_, _>>()?,
        success: args
            .success
            .iter()
            .map(|o| parse_op(o))
            .collect::<Result<_, _>>()?,
        failure: args
            .failure
            .iter()
            .map(|o| parse_op(o))
            .collect::<Result<_, _>>()?,
    })
}

/// `TARGET(KEY) OP EXPECTED`.
pub fn parse_compare(text: &str) -> Result<Compare, ParseError> {
    let bad = |reason| ParseError {
        what: "--if",
        text: text.to_owned(),
        reason,
    };
    let (target, rest) = text
        .split_once('(')
        .ok_or_else(|| bad("expected TARGET(KEY) OP VALUE, e.g. value(k) = v"))?;
    let (key, rest) = rest
        .rsplit_once(')')
        .ok_or_else(|| bad("missing ')' after the key"))?;
    let rest = rest.trim_start();
    let (op, expected) = if let Some(e) = rest.strip_prefix("!=") {
        (CompareOp::NotEqual, e)
    } else if let Some(e) = rest.strip_prefix('=') {
        (CompareOp::Equal, e)
    } else if let Some(e) = rest.strip_prefix('<') {
        (CompareOp::Less, e)
    } else if let Some(e) = rest.strip_prefix('>') {
        (CompareOp::Greater, e)
    } else {
        return Err(bad("the operator must be one of = != < >"));
    };
    let expected = expected.trim();
    let number = || {
        expected
            .parse::<u64>()
            .map_err(|_| bad("version/create/mod/lease compare against a number"))
    };
    let target = match target.trim() {
        "value" => CompareTarget::Value(expected.as_bytes().to_vec()),
        "version" => CompareTarget::Version(number()?),
        "create" => CompareTarget::CreateRevision(number()?),
        "mod" => CompareTarget::ModRevision(number()?),
        "lease" => CompareTarget::Lease(number()?),
        _ => {
            return Err(bad(
                "the target must be value, version, create, mod or lease",
            ))
        }
    };
    if key.is_empty() {
        return Err(bad("the key must not be empty"));
    }
    Ok(Compare {
        key: key.as_bytes().to_vec(),
        op,
        target,
    })
}

/// `put KEY VALUE…`, `get [--prefix] KEY`, `del [--prefix] KEY`.
pub fn parse_op(text: &str) -> Result<TxnOp, ParseError> {
    let bad = |reason| ParseError {
        what: "op",
        text: text.to_owned(),
        reason,
    };
    let text = text.trim_start();
    let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim_start();
    let ranged = |rest: &str| -> Result<KeyRange, ParseError> {
        let (prefix, key) = match rest.strip_prefix("--prefix") {
            Some(key) => (true, key.trim()),
            None => (false, rest.trim()),
        };
        if key.is_empty() && !prefix {
            return Err(bad("missing key"));
        }
        Ok(if prefix {
            KeyRange::prefix(key.as_bytes())
        } else {
            KeyRange::single(key.as_bytes())
        })
    };
    match verb {
        "put" => {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            if key.is_empty() {
                return Err(bad("expected put KEY VALUE"));
            }
            Ok(TxnOp::Put(PutRequest::new(
                key.as_bytes(),
                value.as_bytes(),
            )))
        }
        "get" => Ok(TxnOp::Range(RangeRequest::latest(ranged(rest)?))),
        "del" => Ok(TxnOp::DeleteRange(DeleteRangeRequest {
            range: ranged(rest)?,
            prev_kv: false,
        })),
        _ => Err(bad("an op starts with put, get or del")),
    }
}

pub fn run(args: &TxnArgs) -> i32 {
    let request = match parse(args) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("aurora txn: {e}");
            return 2;
        }
    };
    match args.client.session(|c| c.txn(request)) {
        Ok((revision, reply)) => {
            println!(
                "{} (revision {revision})",
                if reply.succeeded {
                    "SUCCEEDED"
                } else {
                    "FAILED"
                }
            );
            for op in &reply.replies {
                match op {
                    OpReply::Put(_) => println!("OK"),
                    OpReply::DeleteRange(d) => println!("deleted {}", d.deleted),
                    OpReply::Range(r) => {
                        for kv in &r.kvs {
                            print_kv(kv);
                        }
                        if r.kvs.is_empty() {
                            println!("(no keys)");
                        }
                    }
                }
            }
            0
        }
        Err(e) => fail("txn", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_parse_every_target_and_operator() {
        let c = parse_compare("value(a b) = hello world").expect("value");
        assert_eq!(c.key, b"a b");
        assert_eq!(c.op, CompareOp::Equal);
        assert_eq!(c.target, CompareTarget::Value(b"hello world".to_vec()));
        let c = parse_compare("version(k) != 3").expect("version");
        assert_eq!(
            (c.op, c.target),
            (CompareOp::NotEqual, CompareTarget::Version(3))
        );
        let c = parse_compare("mod(k)<42").expect("mod");
        assert_eq!(
            (c.op, c.target),
            (CompareOp::Less, CompareTarget::ModRevision(42))
        );
        let c = parse_compare("create(k) > 0").expect("create");
        assert_eq!(c.target, CompareTarget::CreateRevision(0));
        let c = parse_compare("lease(k) = 7").expect("lease");
        assert_eq!(c.target, CompareTarget::Lease(7));
    }

    #[test]
    fn bad_compares_say_what_is_wrong() {
        for (text, reason) in [
            ("value k = v", "expected TARGET(KEY)"),
            ("value(k = v", "missing ')'"),
            ("value(k) ~ v", "operator"),
            ("version(k) = x", "number"),
            ("size(k) = 1", "target must be"),
            ("value() = v", "empty"),
        ] {
            let e = parse_compare(text).expect_err(text).to_string();
            assert!(e.contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn ops_parse_values_with_spaces_and_prefixes() {
        assert_eq!(
            parse_op("put k hello world").expect("put"),
            TxnOp::Put(PutRequest::new(&b"k"[..], &b"hello world"[..]))
        );
        assert_eq!(
            parse_op("get --prefix job/").expect("get"),
            TxnOp::Range(RangeRequest::latest(KeyRange::prefix(&b"job/"[..])))
        );
        assert_eq!(
            parse_op("del k").expect("del"),
            TxnOp::DeleteRange(DeleteRangeRequest {
                range: KeyRange::single(&b"k"[..]),
                prev_kv: false
            })
        );
        assert!(parse_op("get").is_err());
        assert!(parse_op("put").is_err());
        assert!(parse_op("inc k").is_err());
    }
}
