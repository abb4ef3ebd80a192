//! Atomic counters: `FetchAdd { name, delta }` returns the previous value (a sequencer is
//! `fetch_add(1)`). A missing counter reads 0 and a counter back at 0 is not stored, so counters
//! cost quota only while non-zero and never need deleting.

use std::collections::BTreeMap;

use super::limits::cost;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Counters {
    /// Non-zero values only.
    map: BTreeMap<Vec<u8>, i64>,
    bytes: u64,
}

impl Counters {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get(&self, name: &[u8]) -> i64 {
        self.map.get(name).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &i64)> {
        self.map.iter()
    }

    /// Sets counter `name` to `value` (0 removes it).
    pub fn set(&mut self, name: &[u8], value: i64) {
        let previous = if value == 0 {
            self.map.remove(name)
        } else {
            self.map.insert(name.to_vec(), value)
        };
        match (previous.is_some(), value != 0) {
            (false, true) => self.bytes += cost::counter(name),
            (true, false) => self.bytes -= cost::counter(name),
            _ => {}
        }
    }

    pub fn restore(map: BTreeMap<Vec<u8>, i64>) -> Self {
        let bytes = map.keys().map(|name| cost::counter(name)).sum();
        Self { map, bytes }
    }

    pub fn verify(&self) -> Result<(), String> {
        if self.map.values().any(|&v| v == 0) {
            return Err("a zero counter is stored".to_string());
        }
        let bytes: u64 = self.map.keys().map(|name| cost::counter(name)).sum();
        if bytes != self.bytes {
            return Err(format!(
                "counter bytes {} but counters cost {bytes}",
                self.bytes
            ));
        }
        Ok(())
    }
}
