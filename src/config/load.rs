//! Loading: read the file, check its keys, apply the override layers, deserialize, validate.

use std::io::Read;
use std::path::Path;

use toml::Table;

use super::error::{ConfigError, ConfigErrors, Origin, Problem};
use super::keys::{KeyKind, Keys};
use super::layers::{self, Segment};
use super::schema::RawConfig;
use super::validate::{Checker, Config};

/// The largest configuration file read; a node file is a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Loads and validates the node configuration at `path`, overridden by the `AURORA_*` variables
/// among `env` (pass [`process_env`]) and then by `flags` (the `key=value` arguments of `--set`).
pub fn load(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    flags: impl IntoIterator<Item = String>,
) -> Result<Config, ConfigErrors> {
    let unreadable = |reason: String| {
        ConfigErrors(vec![ConfigError {
            origin: Origin::File(path.to_owned()),
            key: "(file)".to_owned(),
            problem: Problem::Unreadable(reason),
        }])
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(unreadable(format!(
            "larger than {MAX_FILE_BYTES} bytes; a node configuration is a few KiB — is this the \
             right file?"
        )));
    }
    parse(&text, path, env, flags)
}

/// [`load`] for a file already in memory; `path` names it in errors and anchors relative paths.
pub fn parse(
    text: &str,
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    flags: impl IntoIterator<Item = String>,
) -> Result<Config, ConfigErrors> {
    let file = Origin::File(path.to_owned());
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        ConfigErrors(vec![ConfigError {
            origin: file.clone(),
            key: "(file)".to_owned(),
            problem: Problem::Syntax(format!("{at}{}", e.message().trim_end())),
        }])
    })?;
    let keys = Keys::of_config();
    let mut errors = Vec::new();
    unknown_keys(&table, &mut Vec::new(), &keys, &file, &mut errors);
    let overrides = layers::parse_overrides(env, flags, &keys, &mut errors);
    if errors.is_empty() {
        for over in &overrides {
            if let Err(e) = layers::apply(&mut table, over) {
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let raw: RawConfig =
        serde_path_to_error::deserialize(table).map_err(|e| type_error(&e, &overrides, &file))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut checker = Checker {
        file,
        base_dir,
        overrides: &overrides,
        errors: Vec::new(),
    };
    match checker.config(raw) {
        Some(config) => Ok(config),
        None => Err(ConfigErrors(checker.errors)),
    }
}

/// The process's `AURORA_*` variables, for [`load`]. Names or values that are not UTF-8 are
/// passed on lossily, so they fail validation with a readable message instead of being skipped.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        })
        .filter(|(name, _)| name.starts_with(layers::ENV_PREFIX))
        .collect()
}

/// Reports every key of the file's `table` (at `path`) that the schema does not have.
fn unknown_keys(
    table: &Table,
    path: &mut Vec<Segment>,
    keys: &Keys,
    file: &Origin,
    errors: &mut Vec<ConfigError>,
) {
    for (name, value) in table {
        path.push(Segment::Key(name.clone()));
        let schema_key = layers::normalized(path);
        match keys.kind(&schema_key) {
            None => {
                let closest = keys.closest(&schema_key);
                let parent = layers::normalized(&path[..path.len() - 1]);
                errors.push(ConfigError {
                    origin: file.clone(),
                    key: layers::display(path),
                    problem: Problem::UnknownKey {
                        closest: closest.map(|k| layers::render(k, path, file)),
                        valid_here: if closest.is_some() {
                            Vec::new()
                        } else {
                            keys.children(&parent)
                        },
                    },
                });
            }
            Some(KeyKind::Table) => {
                if let toml::Value::Table(inner) = value {
                    unknown_keys(inner, path, keys, file, errors);
                }
            }
            Some(_) => {
                if let toml::Value::Array(items) = value {
                    for (i, item) in items.iter().enumerate() {
                        if let toml::Value::Table(inner) = item {
                            path.push(Segment::Index(i));
                            unknown_keys(inner, path, keys, file, errors);
                            path.pop();
                        }
                    }
                }
            }
        }
        path.pop();
    }
}

/// A deserialization error, at the key it concerns. A missing key is named in full, with the
/// variable and flag that would set it.
fn type_error(
    e: &serde_path_to_error::Error<toml::de::Error>,
    overrides: &[layers::Override],
    file: &Origin,
) -> ConfigErrors {
    let path = match e.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let message = e.inner().message().trim_end();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    let (key, problem) = match missing {
        Some(field) => {
            let key = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            let problem = Problem::MissingKey {
                key: key.clone(),
                env: layers::env_name(&key),
            };
            (key, problem)
        }
        None => (path, Problem::BadValue(message.to_owned())),
    };
    ConfigErrors(vec![ConfigError {
        origin: layers::origin_of(&key, overrides, file),
        key,
        problem,
    }])
}
