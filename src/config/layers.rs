//! The override layers: `AURORA_*` environment variables, then `--set key=value` flags, applied to
//! the file's TOML tree before it is deserialized, so that every layer goes through the same typed,
//! unknown-key-denying deserialization and the same validation.
//!
//! Both layers name a key by its dotted path; array elements by index:
//!
//! | layer | example |
//! |-------|---------|
//! | file  | `[timing]` `heartbeat_interval_ms = 5` |
//! | env   | `AURORA_TIMING__HEARTBEAT_INTERVAL_MS=5`, `AURORA_MEMBERS__1__PEER_ADDR=10.0.0.2:7001` |
//! | flag  | `--set timing.heartbeat_interval_ms=5`, `--set members[1].peer_addr=10.0.0.2:7001` |
//!
//! In a variable name `__` separates path segments and `_` stays part of a key (keys are lower-case
//! snake case, so the mapping is unambiguous). Values are TOML (`5`, `true`, `[0, 1]`,
//! `{ device = "mlx5_0" }`); for text keys the raw text is taken as it is unless it is quoted.
//! Overrides may change array elements the file has but not add new ones: the member list is the
//! cluster's identity and belongs in the file.

use toml::{Table, Value};

use super::error::{ConfigError, Origin, Problem};
use super::keys::{KeyKind, Keys};

/// The prefix of every configuration variable.
pub const ENV_PREFIX: &str = "AURORA_";

/// `AURORA_*` variables that are not configuration keys: the path of the file itself and the log
/// filter, which the daemon reads before there is a configuration, and the client CLI's endpoint
/// list, which a user exports for `aurora put` and must not make `aurora serve` fail.
pub const RESERVED_ENV: &[&str] = &["AURORA_CONFIG", "AURORA_LOG", "AURORA_ENDPOINTS"];

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A key path as the user wrote it, with array indices: `members[1].peer_addr`.
pub(crate) fn display(path: &[Segment]) -> String {
    join(path, |i| format!("[{i}]"))
}

/// A key path as the schema knows it, indices erased: `members[].peer_addr`.
pub(crate) fn normalized(path: &[Segment]) -> String {
    join(path, |_| "[]".to_owned())
}

fn join(path: &[Segment], index: impl Fn(usize) -> String) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&index(*i)),
        }
    }
    out
}

/// The environment variable that sets a key given with indices (`members[1].peer_addr` →
/// `AURORA_MEMBERS__1__PEER_ADDR`).
pub(crate) fn env_name(key: &str) -> String {
    let dotted = key.replace('[', ".").replace(']', "");
    format!(
        "{ENV_PREFIX}{}",
        dotted.replace('.', "__").to_ascii_uppercase()
    )
}

/// A schema key (`members[].peer_addr`) written for `origin`'s layer, with the indices the user
/// wrote (or `N`) in place of `[]`.
pub(crate) fn render(schema_key: &str, user_path: &[Segment], origin: &Origin) -> String {
    let mut indices = user_path.iter().filter_map(|s| match s {
        Segment::Index(i) => Some(i.to_string()),
        Segment::Key(_) => None,
    });
    let mut out = String::new();
    let mut rest = schema_key;
    while let Some(at) = rest.find("[]") {
        out.push_str(&rest[..at]);
        let index = indices.next().unwrap_or_else(|| "N".to_owned());
        out.push_str(&format!("[{index}]"));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    match origin {
        Origin::Env(_) => env_name(&out),
        Origin::File(_) | Origin::Flag(_) => out,
    }
}

/// One override, parsed and checked against the schema, not yet applied.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub(crate) origin: Origin,
    pub(crate) path: Vec<Segment>,
    pub(crate) value: Value,
}

impl Override {
    pub(crate) fn key(&self) -> String {
        display(&self.path)
    }
}

/// Parses the `AURORA_*` variables among `env` and the `key=value` arguments of `--set` flags, in
/// that order (later ones win).
pub(crate) fn parse_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    flags: impl IntoIterator<Item = String>,
    keys: &Keys,
    errors: &mut Vec<ConfigError>,
) -> Vec<Override> {
    let mut overrides = Vec::new();
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !RESERVED_ENV.contains(&name.as_str()))
        .collect();
    // The process environment has no order; sorting makes which error comes first reproducible.
    env.sort();
    for (name, raw) in env {
        let origin = Origin::Env(name.clone());
        let path = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|part| match part.parse::<usize>() {
                Ok(index) => Ok(Segment::Index(index)),
                Err(_) if part.is_empty() => Err(()),
                Err(_) => Ok(Segment::Key(part.to_ascii_lowercase())),
            })
            .collect::<Result<Vec<_>, ()>>();
        let Ok(path) = path else {
            errors.push(ConfigError {
                key: name.clone(),
                origin,
                problem: Problem::BadOverride(format!(
                    "{name} has an empty path segment; separate keys with `__`, as in \
                     AURORA_TIMING__HEARTBEAT_INTERVAL_MS"
                )),
            });
            continue;
        };
        overrides.extend(checked(origin, path, &raw, keys, errors));
    }
    for flag in flags {
        let origin = Origin::Flag(flag.clone());
        let Some((key, raw)) = flag.split_once('=') else {
            errors.push(ConfigError {
                key: flag.clone(),
                origin,
                problem: Problem::BadOverride(
                    "expected key=value, e.g. --set timing.heartbeat_interval_ms=5".to_owned(),
                ),
            });
            continue;
        };
        match flag_path(key.trim()) {
            Some(path) => overrides.extend(checked(origin, path, raw, keys, errors)),
            None => errors.push(ConfigError {
                key: key.to_owned(),
                origin,
                problem: Problem::BadOverride(format!(
                    "{key:?} is not a key path; write dotted keys with indices like \
                     members[1].peer_addr or members.1.peer_addr"
                )),
            }),
        }
    }
    overrides
}

/// Parses `a.b[1].c` or `a.b.1.c`.
fn flag_path(key: &str) -> Option<Vec<Segment>> {
    let mut path = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        match name.parse::<usize>() {
            Ok(index) => path.push(Segment::Index(index)),
            Err(_) if name.is_empty() => {
                if rest.is_empty() || path.is_empty() {
                    return None;
                }
            }
            Err(_) => path.push(Segment::Key(name.to_owned())),
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            path.push(Segment::Index(inner[..close].parse().ok()?));
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!path.is_empty() && matches!(path[0], Segment::Key(_))).then_some(path)
}

/// Checks `path` against the schema and reads `raw` as the key's kind of value.
fn checked(
    origin: Origin,
    path: Vec<Segment>,
    raw: &str,
    keys: &Keys,
    errors: &mut Vec<ConfigError>,
) -> Option<Override> {
    let schema_key = normalized(&path);
    let Some(kind) = keys.kind(&schema_key) else {
        let problem = Problem::UnknownKey {
            closest: keys.closest(&schema_key).map(|k| render(k, &path, &origin)),
            valid_here: Vec::new(),
        };
        errors.push(ConfigError {
            key: display(&path),
            origin,
            problem,
        });
        return None;
    };
    let quoted = raw.starts_with('"') || raw.starts_with('\'');
    let value = if kind == KeyKind::Text && !quoted {
        Value::String(raw.to_owned())
    } else {
        // Read as a TOML value; text that is not one (`rdma`, `fsync`) is a bare string, and the
        // typed deserialization decides whether that is acceptable for the key.
        format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_owned()))
    };
    Some(Override {
        origin,
        path,
        value,
    })
}

/// Sets the override's value in `table`, creating tables on the way (so a section the file left
/// out can be given entirely by overrides).
pub(crate) fn apply(table: &mut Table, over: &Override) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError {
        origin: over.origin.clone(),
        key: over.key(),
        problem: Problem::BadOverride(message),
    };
    let (last, parents) = over
        .path
        .split_last()
        .expect("override paths are never empty");
    let mut here = TableOrArray::Table(table);
    for (depth, segment) in parents.iter().enumerate() {
        let next_is_index = matches!(over.path[depth + 1], Segment::Index(_));
        let prefix = display(&over.path[..=depth]);
        here = match (here, segment) {
            (TableOrArray::Table(t), Segment::Key(key)) => {
                let slot = t.entry(key.clone()).or_insert_with(|| {
                    if next_is_index {
                        Value::Array(Vec::new())
                    } else {
                        Value::Table(Table::new())
                    }
                });
                let kind = slot.type_str();
                TableOrArray::of(slot).ok_or_else(|| {
                    fail(format!("{prefix} is a {kind}, so it has no key inside it"))
                })?
            }
            (TableOrArray::Array(items), Segment::Index(i)) => {
                let len = items.len();
                let slot = items.get_mut(*i).ok_or_else(|| {
                    fail(format!(
                        "index {i} is out of range: {} has {len} entries; overrides change entries \
                         the file has, they do not add new ones",
                        display(&over.path[..depth])
                    ))
                })?;
                let kind = slot.type_str();
                TableOrArray::of(slot).ok_or_else(|| {
                    fail(format!("{prefix} is a {kind}, so it has no key inside it"))
                })?
            }
            (TableOrArray::Table(_), Segment::Index(_)) => {
                return Err(fail(format!(
                    "{} is a table, not an array",
                    display(&over.path[..depth])
                )))
            }
            (TableOrArray::Array(_), Segment::Key(_)) => {
                return Err(fail(format!(
                    "{} is an array; name an element by index",
                    display(&over.path[..depth])
                )))
            }
        };
    }
    match (here, last) {
        (TableOrArray::Table(t), Segment::Key(key)) => {
            t.insert(key.clone(), over.value.clone());
            Ok(())
        }
        (TableOrArray::Array(items), Segment::Index(i)) => {
            let len = items.len();
            let slot = items.get_mut(*i).ok_or_else(|| {
                fail(format!(
                    "index {i} is out of range: the array has {len} entries; overrides change \
                     entries the file has, they do not add new ones"
                ))
            })?;
            *slot = over.value.clone();
            Ok(())
        }
        _ => Err(fail(
            "the path mixes keys and indices where the file has the other".to_owned(),
        )),
    }
}

/// A container a key path can step into.
enum TableOrArray<'v> {
    Table(&'v mut Table),
    Array(&'v mut Vec<Value>),
}

impl<'v> TableOrArray<'v> {
    fn of(value: &'v mut Value) -> Option<Self> {
        match value {
            Value::Table(t) => Some(Self::Table(t)),
            Value::Array(a) => Some(Self::Array(a)),
            _ => None,
        }
    }
}

/// Which layer last set `key` (or a key inside it, or the table holding it); the file otherwise.
pub(crate) fn origin_of(key: &str, overrides: &[Override], file: &Origin) -> Origin {
    let related = |a: &str, b: &str| {
        a == b || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
    };
    overrides
        .iter()
        .rev()
        .find(|o| {
            let set = o.key();
            related(key, &set) || related(&set, key)
        })
        .map_or_else(|| file.clone(), |o| o.origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Segment {
        Segment::Key(s.to_owned())
    }

    #[test]
    fn flag_paths_accept_brackets_and_dotted_indices() {
        let expected = vec![key("members"), Segment::Index(1), key("peer_addr")];
        assert_eq!(flag_path("members[1].peer_addr"), Some(expected.clone()));
        assert_eq!(flag_path("members.1.peer_addr"), Some(expected));
        assert_eq!(flag_path("members[x].peer_addr"), None);
        assert_eq!(flag_path(".timing"), None);
        assert_eq!(flag_path("1.timing"), None);
    }

    #[test]
    fn rendering_follows_the_layer() {
        let user = vec![key("members"), Segment::Index(2), key("peer_adr")];
        assert_eq!(
            render("members[].peer_addr", &user, &Origin::Env("X".into())),
            "AURORA_MEMBERS__2__PEER_ADDR"
        );
        assert_eq!(
            render("members[].peer_addr", &user, &Origin::Flag("x".into())),
            "members[2].peer_addr"
        );
        assert_eq!(
            render("dpdk.peers[].mac", &[], &Origin::Flag("x".into())),
            "dpdk.peers[N].mac"
        );
    }

    #[test]
    fn origin_is_the_last_layer_that_touched_the_key() {
        let file = Origin::File("n.toml".into());
        let over = |path: Vec<Segment>, origin: Origin| Override {
            origin,
            path,
            value: Value::Integer(1),
        };
        let env = Origin::Env("AURORA_QUORUM__ELECTION_QUORUM".into());
        let flag = Origin::Flag("quorum.election_quorum=3".into());
        let overrides = vec![
            over(vec![key("quorum"), key("election_quorum")], env.clone()),
            over(vec![key("quorum"), key("election_quorum")], flag.clone()),
            over(vec![key("timing")], env.clone()),
        ];
        assert_eq!(origin_of("quorum", &overrides, &file), flag);
        assert_eq!(
            origin_of("timing.heartbeat_interval_ms", &overrides, &file),
            env
        );
        assert_eq!(origin_of("quorum_x", &overrides, &file), file);
        assert_eq!(origin_of("members[0].id", &overrides, &file), file);
    }
}
