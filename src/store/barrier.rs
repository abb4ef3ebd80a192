//! Barriers: `Arrive { name, n }` waits until the n-th member of the current generation arrives,
//! then releases them all at once and the name is free for the next generation.
//!
//! A generation is identified by the log index of its first arrival, which strictly increases per
//! name without keeping any record of finished generations (a finished barrier leaves no state).
//! Every member is held alive by a lease; if a waiting member's lease is revoked or expires the
//! generation breaks: every waiter is failed with the reason, and the name is free again.

use std::collections::BTreeMap;

use super::command::{BarrierStatus, ClientId, LeaseId};
use super::error::StoreError;
use super::limits::cost;

/// A member waiting at a barrier, and the request to complete when it releases or breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub lease: LeaseId,
    pub client_id: ClientId,
    pub seq: u64,
}

/// A generation in progress: `1 <= waiters.len() < n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Barrier {
    pub n: u32,
    pub generation: u64,
    pub waiters: Vec<Member>,
}

/// What an arrival did.
#[derive(Debug)]
pub(super) enum Arrival {
    /// The member waits; the status to answer with.
    Waiting(BarrierStatus),
    /// The member completed the generation; these earlier members are released with it.
    Released {
        generation: u64,
        members: Vec<Member>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Barriers {
    map: BTreeMap<Vec<u8>, Barrier>,
    bytes: u64,
}

impl Barriers {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Barrier)> {
        self.map.iter()
    }

    /// Checks an arrival with `n` at `name`: returns whether it would wait (and so cost quota).
    pub fn check_arrive(&self, name: &[u8], n: u32) -> Result<bool, StoreError> {
        match self.map.get(name) {
            Some(barrier) if barrier.n != n => Err(StoreError::BarrierSizeMismatch {
                name: name.to_vec(),
                expected: barrier.n,
                got: n,
            }),
            Some(barrier) => Ok(barrier.waiters.len() + 1 < n as usize),
            None => Ok(n > 1),
        }
    }

    /// Records an arrival that [`Barriers::check_arrive`] accepted; `index` names a new generation.
    pub fn arrive(&mut self, name: &[u8], n: u32, member: Member, index: u64) -> Arrival {
        let barrier = self.map.entry(name.to_vec()).or_insert_with(|| Barrier {
            n,
            generation: index,
            waiters: Vec::new(),
        });
        assert_eq!(barrier.n, n, "caller checked n");
        let arrived = barrier.waiters.len() + 1;
        if arrived < n as usize {
            barrier.waiters.push(member);
            self.bytes += cost::barrier_member(name);
            return Arrival::Waiting(BarrierStatus::Waiting {
                generation: barrier.generation,
                arrived: u32::try_from(arrived).expect("arrived < n, a u32"),
                n,
            });
        }
        let barrier = self.map.remove(name).expect("inserted above");
        self.bytes -= cost::barrier_member(name) * barrier.waiters.len() as u64;
        Arrival::Released {
            generation: barrier.generation,
            members: barrier.waiters,
        }
    }

    /// Ends the generation of `name` unreleased (a member's lease is gone).
    pub fn break_generation(&mut self, name: &[u8]) -> Option<Barrier> {
        let barrier = self.map.remove(name)?;
        self.bytes -= cost::barrier_member(name) * barrier.waiters.len() as u64;
        Some(barrier)
    }

    pub fn restore(map: BTreeMap<Vec<u8>, Barrier>) -> Self {
        let bytes = map
            .iter()
            .map(|(name, b)| cost::barrier_member(name) * b.waiters.len() as u64)
            .sum();
        Self { map, bytes }
    }

    /// Checks the barrier rules; `lease_owns(lease, name)` says whether the lease records the
    /// membership.
    pub fn verify(
        &self,
        index: u64,
        lease_owns: impl Fn(LeaseId, &[u8]) -> bool,
    ) -> Result<(), String> {
        let mut bytes = 0;
        for (name, barrier) in &self.map {
            let shown = name.escape_ascii();
            if barrier.waiters.is_empty() || barrier.waiters.len() >= barrier.n as usize {
                return Err(format!(
                    "barrier {shown} has {} of {} waiting",
                    barrier.waiters.len(),
                    barrier.n
                ));
            }
            if barrier.generation == 0 || barrier.generation > index {
                return Err(format!(
                    "barrier {shown} generation {} after index {index}",
                    barrier.generation
                ));
            }
            for member in &barrier.waiters {
                bytes += cost::barrier_member(name);
                if !lease_owns(member.lease, name) {
                    return Err(format!(
                        "barrier {shown}: lease {:#x} does not record its membership",
                        member.lease
                    ));
                }
            }
        }
        if bytes != self.bytes {
            return Err(format!(
                "barrier bytes {} but members cost {bytes}",
                self.bytes
            ));
        }
        Ok(())
    }
}
