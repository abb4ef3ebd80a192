//! Fair FIFO queues of lease holders: the shared mechanism behind locks and elections.
//!
//! A queue exists exactly while someone holds it: the holder is the front, the others wait in
//! arrival order, bounded by `max_queue_waiters`. Each grant carries a fencing token, the revision
//! of the command that granted it, so tokens strictly increase per name and whatever the lock
//! protects can refuse a deposed holder. Ownership is per lease (etcd's concurrency package): a
//! lease asking again for what it holds gets its token back.

use std::collections::{BTreeMap, VecDeque};

use super::command::{Acquire, ClientId, LeaderInfo, LeaseId};
use super::error::StoreError;
use super::limits::cost;

/// One request in a queue: the lease that owns it and the request to notify on its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Waiter {
    pub lease: LeaseId,
    pub client_id: ClientId,
    pub seq: u64,
    /// An election candidate's value; empty for locks.
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Queue {
    pub holder: Waiter,
    pub token: u64,
    pub waiters: VecDeque<Waiter>,
}

impl Queue {
    fn entries(&self) -> impl Iterator<Item = &Waiter> {
        std::iter::once(&self.holder).chain(&self.waiters)
    }
}

/// A grant made while releasing: the waiter that now holds `name`, under `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    pub waiter: Waiter,
    pub token: u64,
}

/// What removing a lease from one queue did.
#[derive(Debug, Default)]
pub(super) struct LeaseRemoval {
    /// The lease's queued (not holding) entry, whose request must fail.
    pub dropped_waiter: Option<Waiter>,
    /// Set when the lease held the queue and the next waiter took over.
    pub grant: Option<Grant>,
    /// The lease held the queue.
    pub was_holder: bool,
}

/// All queues of one kind (locks, or elections), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Queues {
    map: BTreeMap<Vec<u8>, Queue>,
    bytes: u64,
}

impl Queues {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Queue)> {
        self.map.iter()
    }

    pub fn leader(&self, name: &[u8]) -> Option<LeaderInfo> {
        self.map.get(name).map(|q| LeaderInfo {
            lease: q.holder.lease,
            token: q.token,
            value: q.holder.value.clone(),
        })
    }

    /// Decides what an acquire by `lease` would do, without changing anything: `Ok(Some(token))`
    /// if the lease already holds, `Ok(None)` if a new entry is needed, or the refusal.
    pub fn check_acquire(
        &self,
        name: &[u8],
        lease: LeaseId,
        max_waiters: u32,
    ) -> Result<Option<u64>, StoreError> {
        let Some(queue) = self.map.get(name) else {
            return Ok(None);
        };
        if queue.holder.lease == lease {
            return Ok(Some(queue.token));
        }
        if queue.waiters.iter().any(|w| w.lease == lease) {
            return Err(StoreError::AlreadyWaiting {
                name: name.to_vec(),
                lease,
            });
        }
        if queue.waiters.len() >= max_waiters as usize {
            return Err(StoreError::QueueFull {
                name: name.to_vec(),
                capacity: max_waiters,
            });
        }
        Ok(None)
    }

    /// Adds `waiter` (after [`Queues::check_acquire`] said a new entry is needed): it holds at
    /// once under `token()` if the queue is free, else it waits.
    pub fn enqueue(&mut self, name: &[u8], waiter: Waiter, token: impl FnOnce() -> u64) -> Acquire {
        self.bytes += cost::queue_entry(name, &waiter.value);
        match self.map.get_mut(name) {
            Some(queue) => {
                debug_assert!(queue.entries().all(|w| w.lease != waiter.lease));
                let ahead = u32::try_from(queue.waiters.len() + 1)
                    .expect("waiters are bounded by a u32 limit");
                queue.waiters.push_back(waiter);
                Acquire::Queued { ahead }
            }
            None => {
                let token = token();
                self.map.insert(
                    name.to_vec(),
                    Queue {
                        holder: waiter,
                        token,
                        waiters: VecDeque::new(),
                    },
                );
                Acquire::Granted { token }
            }
        }
    }

    /// Checks that `token` holds `name`.
    pub fn check_holder(&self, name: &[u8], token: u64) -> Result<&Queue, StoreError> {
        match self.map.get(name) {
            Some(queue) if queue.token == token => Ok(queue),
            other => Err(StoreError::NotHolder {
                name: name.to_vec(),
                token,
                holder_token: other.map_or(0, |q| q.token),
            }),
        }
    }

    /// Replaces the holder's value (election proclaim), after [`Queues::check_holder`].
    pub fn set_value(&mut self, name: &[u8], value: Vec<u8>) {
        let queue = self.map.get_mut(name).expect("caller checked the holder");
        self.bytes -= cost::queue_entry(name, &queue.holder.value);
        self.bytes += cost::queue_entry(name, &value);
        queue.holder.value = value;
    }

    /// The holder lets go (after [`Queues::check_holder`]); the first waiter, if any, takes over
    /// under `token()`. Returns the released holder and the new grant.
    pub fn release(&mut self, name: &[u8], token: impl FnOnce() -> u64) -> (Waiter, Option<Grant>) {
        let mut queue = self.map.remove(name).expect("caller checked the holder");
        self.bytes -= cost::queue_entry(name, &queue.holder.value);
        let released = queue.holder;
        let grant = queue.waiters.pop_front().map(|next| {
            let token = token();
            assert!(
                token > queue.token,
                "fencing tokens strictly increase per name"
            );
            let grant = Grant {
                waiter: next.clone(),
                token,
            };
            self.map.insert(
                name.to_vec(),
                Queue {
                    holder: next,
                    token,
                    waiters: queue.waiters,
                },
            );
            grant
        });
        (released, grant)
    }

    /// Takes `lease`'s entry out of queue `name`: a waiter is dropped, a holder releases.
    pub fn remove_lease(
        &mut self,
        name: &[u8],
        lease: LeaseId,
        token: impl FnOnce() -> u64,
    ) -> LeaseRemoval {
        let Some(queue) = self.map.get_mut(name) else {
            return LeaseRemoval::default();
        };
        if queue.holder.lease == lease {
            let (_, grant) = self.release(name, token);
            return LeaseRemoval {
                dropped_waiter: None,
                grant,
                was_holder: true,
            };
        }
        let position = queue.waiters.iter().position(|w| w.lease == lease);
        let dropped_waiter = position.and_then(|p| queue.waiters.remove(p));
        if let Some(waiter) = &dropped_waiter {
            self.bytes -= cost::queue_entry(name, &waiter.value);
        }
        LeaseRemoval {
            dropped_waiter,
            grant: None,
            was_holder: false,
        }
    }

    pub fn restore(map: BTreeMap<Vec<u8>, Queue>) -> Self {
        let bytes = map
            .iter()
            .flat_map(|(name, q)| q.entries().map(move |w| cost::queue_entry(name, &w.value)))
            .sum();
        Self { map, bytes }
    }

    /// Checks the queue rules; `lease_owns(lease, name)` says whether the lease records the entry.
    pub fn verify(
        &self,
        kind: &str,
        max_waiters: u32,
        revision: u64,
        lease_owns: impl Fn(LeaseId, &[u8]) -> bool,
    ) -> Result<(), String> {
        let mut bytes = 0;
        for (name, queue) in &self.map {
            let shown = name.escape_ascii();
            if queue.waiters.len() > max_waiters as usize {
                return Err(format!(
                    "{kind} {shown} has {} waiters",
                    queue.waiters.len()
                ));
            }
            if queue.token == 0 || queue.token > revision {
                return Err(format!(
                    "{kind} {shown} token {} outside 1..={revision}",
                    queue.token
                ));
            }
            let mut leases: Vec<LeaseId> = Vec::new();
            for waiter in queue.entries() {
                bytes += cost::queue_entry(name, &waiter.value);
                if !lease_owns(waiter.lease, name) {
                    return Err(format!(
                        "{kind} {shown}: lease {:#x} does not record its entry",
                        waiter.lease
                    ));
                }
                if leases.contains(&waiter.lease) {
                    return Err(format!(
                        "{kind} {shown}: lease {:#x} queued twice",
                        waiter.lease
                    ));
                }
                leases.push(waiter.lease);
            }
        }
        if bytes != self.bytes {
            return Err(format!(
                "{kind} bytes {} but entries cost {bytes}",
                self.bytes
            ));
        }
        Ok(())
    }

    /// How many (name, lease) entries exist; the leases' records must count the same.
    pub fn entry_count(&self) -> usize {
        self.map.values().map(|q| 1 + q.waiters.len()).sum()
    }
}
