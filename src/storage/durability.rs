//! The durability mode as storage sees it: its display name (for `/status` and bench reports) and
//! the byte that records it in every WAL segment header. The type itself is the configuration's
//! [`Durability`], so the mode a node is configured with is the mode its storage runs in.

use std::fmt;

pub use crate::config::Durability;

impl Durability {
    /// The name used in configuration, `/status` and bench reports: `fsync` or `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fsync => "fsync",
            Self::Memory => "memory",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The byte that records `mode` in every WAL segment header.
pub(crate) fn to_byte(mode: Durability) -> u8 {
    match mode {
        Durability::Fsync => 1,
        Durability::Memory => 2,
    }
}

/// Inverse of [`to_byte`]; `None` for a byte no version ever wrote.
pub(crate) fn from_byte(byte: u8) -> Option<Durability> {
    match byte {
        1 => Some(Durability::Fsync),
        2 => Some(Durability::Memory),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_match_the_configuration_names() {
        #[derive(serde::Deserialize)]
        struct Wrapper {
            durability: Durability,
        }
        for mode in [Durability::Fsync, Durability::Memory] {
            let parsed: Wrapper =
                toml::from_str(&format!("durability = \"{mode}\"")).expect("config name");
            assert_eq!(parsed.durability, mode);
            assert_eq!(from_byte(to_byte(mode)), Some(mode));
        }
        assert_eq!(Durability::default().to_string(), "fsync");
    }

    #[test]
    fn bytes_no_version_wrote_are_unknown() {
        assert_eq!(from_byte(0), None);
        assert_eq!(from_byte(3), None);
    }
}
