//! The durability mode: what a node writes to disk before it reports a write durable.

use std::fmt;
use std::str::FromStr;

/// How durable an acknowledged write is. Shown in `/status` and in every benchmark report
/// (its [`Display`](fmt::Display) form is `fsync` or `memory`).
///
/// See the [module documentation](super) for what each mode writes and why the hard state is
/// synced in both.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every log entry and hard state is written and `fdatasync`ed before it is reported durable:
    /// a write survives the loss of every node's power.
    #[default]
    Fsync,
    /// Replicated memory (Mu, DARE): log entries live only in the memory of the replicas and
    /// survive while a quorum of them lives; only the hard state (term and vote) is synced.
    Memory,
}

impl Durability {
    /// The name used in configuration, `/status` and bench reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fsync => "fsync",
            Self::Memory => "memory",
        }
    }

    /// The byte that records the mode in every WAL segment header.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::Fsync => 1,
            Self::Memory => 2,
        }
    }

    /// Inverse of [`to_byte`](Self::to_byte); `None` for a byte no version ever wrote.
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Fsync),
            2 => Some(Self::Memory),
            _ => None,
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durability name that is neither `fsync` nor `memory`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown durability mode {given:?}: use \"fsync\" (the default: every write synced to disk) or \"memory\" (replicated memory: only term and vote are synced)")]
pub struct UnknownDurability {
    /// The rejected name.
    pub given: String,
}

impl FromStr for Durability {
    type Err = UnknownDurability;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "fsync" => Ok(Self::Fsync),
            "memory" => Ok(Self::Memory),
            _ => Err(UnknownDurability {
                given: name.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_parse() {
        for mode in [Durability::Fsync, Durability::Memory] {
            assert_eq!(mode.to_string().parse::<Durability>(), Ok(mode));
            assert_eq!(Durability::from_byte(mode.to_byte()), Some(mode));
        }
        assert_eq!(Durability::default(), Durability::Fsync);
    }

    #[test]
    fn unknown_name_is_rejected_with_the_choices() {
        let error = "fdatasync".parse::<Durability>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"fdatasync\""), "{message}");
        assert!(message.contains("fsync") && message.contains("memory"));
        assert_eq!(Durability::from_byte(0), None);
    }
}
