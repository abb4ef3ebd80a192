//! The simulated state machine: a register per key (put, compare-and-set; gets are served by reads),
//! the commands clients propose, and its snapshot bytes.
//!
//! It is deliberately tiny: the simulator tests consensus, and a register per key is exactly what
//! the linearizability checker models.

/// Keys clients work on; few, so operations contend.
pub const KEYS: usize = 3;

/// A write a client proposes through consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// The operation's unique id across the run (also the value a put or CAS writes).
    pub op: u64,
    pub key: u8,
    /// `None`: a put. `Some(expect)`: a CAS that writes only if the register holds `expect`.
    pub cas: Option<Option<u64>>,
}

/// Bytes of an encoded [`Command`].
pub const COMMAND_LEN: usize = 8 + 1 + 1 + 8;

impl Command {
    pub fn encode(&self) -> [u8; COMMAND_LEN] {
        let mut out = [0u8; COMMAND_LEN];
        out[..8].copy_from_slice(&self.op.to_le_bytes());
        out[8] = self.key;
        let (flag, expect) = match self.cas {
            None => (0, 0),
            Some(None) => (1, 0),
            Some(Some(v)) => (2, v),
        };
        out[9] = flag;
        out[10..].copy_from_slice(&expect.to_le_bytes());
        out
    }

    /// Decodes a payload the simulator proposed; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != COMMAND_LEN || usize::from(bytes[8]) >= KEYS {
            return None;
        }
        let op = u64::from_le_bytes(bytes[..8].try_into().ok()?);
        let expect = u64::from_le_bytes(bytes[10..].try_into().ok()?);
        let cas = match bytes[9] {
            0 => None,
            1 => Some(None),
            2 => Some(Some(expect)),
            _ => return None,
        };
        Some(Self {
            op,
            key: bytes[8],
            cas,
        })
    }
}

/// The registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kv {
    values: [Option<u64>; KEYS],
}

/// Bytes of a snapshot of [`Kv`].
const SNAPSHOT_LEN: usize = KEYS * 9;

impl Kv {
    /// Applies `cmd`; returns whether it wrote (always for a put; the comparison for a CAS).
    pub fn apply(&mut self, cmd: &Command) -> bool {
        let slot = &mut self.values[usize::from(cmd.key)];
        match cmd.cas {
            Some(expect) if *slot != expect => false,
            _ => {
                *slot = Some(cmd.op);
                true
            }
        }
    }

    pub fn get(&self, key: u8) -> Option<u64> {
        self.values[usize::from(key)]
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SNAPSHOT_LEN);
        for v in self.values {
            out.push(u8::from(v.is_some()));
            out.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        }
        out
    }

    /// Restores registers from [`Kv::snapshot`] bytes (the empty snapshot of a fresh node is empty).
    pub fn restore(bytes: &[u8]) -> Self {
        let mut kv = Kv::default();
        if bytes.is_empty() {
            return kv;
        }
        assert_eq!(bytes.len(), SNAPSHOT_LEN, "a snapshot the simulator wrote");
        for (i, chunk) in bytes.chunks_exact(9).enumerate() {
            let v = u64::from_le_bytes(chunk[1..].try_into().expect("9-byte chunk"));
            kv.values[i] = (chunk[0] == 1).then_some(v);
        }
        kv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_cas_compares() {
        for cas in [None, Some(None), Some(Some(9))] {
            let c = Command {
                op: 42,
                key: 2,
                cas,
            };
            assert_eq!(Command::decode(&c.encode()), Some(c));
        }
        let mut kv = Kv::default();
        assert!(!kv.apply(&Command {
            op: 1,
            key: 0,
            cas: Some(Some(5))
        }));
        assert!(kv.apply(&Command {
            op: 2,
            key: 0,
            cas: Some(None)
        }));
        assert!(kv.apply(&Command {
            op: 3,
            key: 0,
            cas: Some(Some(2))
        }));
        assert_eq!(kv.get(0), Some(3));
        assert_eq!(Kv::restore(&kv.snapshot()), kv);
    }
}
