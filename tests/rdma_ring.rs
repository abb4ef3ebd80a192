//! The one-sided log ring: write permission belongs to one term, and a follower that grants a
//! higher term cuts the old leader off at its NIC — under a partition and after a kill too.
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::rdma::ring::{RingAppend, RingGrant};
use aurora::transport::rdma::{RdmaConfig, RdmaTransport};
use aurora::transport::{DownReason, Event, PeerId, Transport};
use rdma_support::*;

const FOLLOWER: PeerId = 3;

fn follower() -> RdmaTransport {
    let mut cfg: RdmaConfig = node(FOLLOWER, 1, &[], &[1, 2]);
    cfg.ring_slots = 16;
    cfg.ring_slot_bytes = 256;
    RdmaTransport::new(cfg).unwrap()
}

/// Appends the follower has verified, after pumping until `n` arrived.
fn appends(ts: &mut [&mut RdmaTransport], n: usize) -> Vec<RingAppend> {
    let mut got = Vec::with_capacity(64);
    pump_until(ts, &format!("{n} ring appends at the follower"), |ts| {
        ts[0].take_ring_appends(&mut got);
        got.len() >= n
    });
    got
}

/// Pumps until leader `who` loses the follower; returns why.
fn until_cut_off(ts: &mut [&mut RdmaTransport], who: usize) -> DownReason {
    let mut reason = None;
    pump(ts, "the deposed leader's connection fails", |i, e| {
        if let (true, Event::PeerDown { reason: r, .. }) = (i == who, &e) {
            reason = Some(*r);
        }
        reason.is_some()
    });
    reason.unwrap()
}

#[test]
fn the_granted_leader_writes_entries_with_the_commit_index_piggybacked() {
    let mut f = follower();
    let mut l = RdmaTransport::new(node(1, 0, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    until_up(&mut [&mut f, &mut l], 1, FOLLOWER);
    until_up(&mut [&mut f, &mut l], 0, 1);
    let grant = f.grant_ring(1, 5).unwrap();
    l.accept_ring_grant(FOLLOWER, RingGrant::from_bytes(&grant.to_bytes()).unwrap());
    for index in 1..=40u64 {
        // Keep fewer than `slots` unread entries in flight (the caller's bound).
        l.ring_append(
            FOLLOWER,
            5,
            index,
            4,
            index - 1,
            format!("entry {index}").as_bytes(),
        )
        .unwrap();
        let got = appends(&mut [&mut f, &mut l], 1);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].index,
                got[0].entry_term,
                got[0].leader_term,
                got[0].commit_index
            ),
            (index, 4, 5, index - 1)
        );
        assert_eq!(
            f.ring_entry(index),
            Some(format!("entry {index}").as_bytes())
        );
    }
    assert_eq!(f.ring_stats().appends_delivered, 40);
    assert_eq!(f.ring_stats().appends_rejected, 0);
    assert_eq!(
        f.ring_entry(1),
        None,
        "slot 1 was overwritten by entry 17 and then 33"
    );
    let err = l.ring_append(FOLLOWER, 6, 41, 6, 40, b"x").unwrap_err();
    assert!(
        err.to_string().contains("no ring write permission"),
        "{err}"
    );
}

/// Grants term 1 to leader 1, lets it write entry 1, then grants term 2 to leader 2 and returns.
fn depose(f: &mut RdmaTransport, l1: &mut RdmaTransport, l2: &mut RdmaTransport) {
    until_up(&mut [&mut *f, &mut *l1, &mut *l2], 1, FOLLOWER);
    until_up(&mut [&mut *f, &mut *l1, &mut *l2], 2, FOLLOWER);
    let g1 = f.grant_ring(1, 1).unwrap();
    l1.accept_ring_grant(FOLLOWER, g1);
    l1.ring_append(FOLLOWER, 1, 1, 1, 0, b"from leader 1")
        .unwrap();
    let got = appends(&mut [&mut *f, &mut *l1, &mut *l2], 1);
    assert_eq!(got[0].from, 1);
    assert!(
        f.grant_ring(1, 1).is_err(),
        "a grant never moves back or repeats"
    );
    let g2 = f.grant_ring(2, 2).unwrap();
    assert_ne!(g1.rkey, g2.rkey, "a new term is a new registration");
    l2.accept_ring_grant(FOLLOWER, g2);
}

/// After deposition: leader 1's stale write must not land; leader 2's must.
fn check_deposed(f: &mut RdmaTransport, l1: &mut RdmaTransport, l2: &mut RdmaTransport) {
    let before = f.ring_stats().appends_delivered;
    l1.ring_append(FOLLOWER, 1, 2, 1, 1, b"STALE from deposed leader 1")
        .unwrap();
    // The follower's NIC refuses the dead rkey; whichever side notices first tears the QP down.
    let reason = until_cut_off(&mut [&mut *f, &mut *l1, &mut *l2], 1);
    assert!(
        matches!(reason, DownReason::Io { .. } | DownReason::Closed),
        "{reason:?}"
    );
    assert_eq!(
        f.ring_entry(2),
        None,
        "nothing of the deposed leader's write landed"
    );
    assert_eq!(f.ring_stats().appends_delivered, before);
    l2.ring_append(FOLLOWER, 2, 2, 2, 1, b"from leader 2")
        .unwrap();
    let got = appends(&mut [&mut *f, &mut *l1, &mut *l2], 1);
    assert_eq!((got[0].from, got[0].index, got[0].leader_term), (2, 2, 2));
    assert_eq!(f.ring_entry(2), Some(&b"from leader 2"[..]));
    assert_eq!(
        f.ring_entry(1),
        None,
        "entry 1 was written under term 1, no longer the grant"
    );
}

#[test]
fn a_grant_moves_once_in_a_term_from_the_candidate_to_the_winner() {
    // The follower voted for candidate 1 in term 4, then accepted leader 2 of term 4.
    let mut f = follower();
    let mut l1 = RdmaTransport::new(node(1, 0, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    let mut l2 = RdmaTransport::new(node(2, 2, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    until_up(&mut [&mut f, &mut l1, &mut l2], 1, FOLLOWER);
    until_up(&mut [&mut f, &mut l1, &mut l2], 2, FOLLOWER);
    let to_candidate = f.grant_ring(1, 4).unwrap();
    assert!(f.grant_ring(1, 4).is_err(), "a grant never repeats");
    let to_winner = f.grant_ring(2, 4).unwrap();
    assert_ne!(
        to_candidate.rkey, to_winner.rkey,
        "the move is a new registration"
    );
    assert!(f.grant_ring(1, 4).is_err(), "and never moves back");
    assert!(f.grant_ring(3, 4).is_err(), "nor a second time in the term");
    // The loser's rkey is dead; the winner writes.
    l1.accept_ring_grant(FOLLOWER, to_candidate);
    l2.accept_ring_grant(FOLLOWER, to_winner);
    l2.ring_append(FOLLOWER, 4, 1, 4, 0, b"from the winner")
        .unwrap();
    let got = appends(&mut [&mut f, &mut l1, &mut l2], 1);
    assert_eq!((got[0].from, got[0].leader_term), (2, 4));
    l1.ring_append(FOLLOWER, 4, 2, 4, 1, b"STALE from the losing candidate")
        .unwrap();
    until_cut_off(&mut [&mut f, &mut l1, &mut l2], 1);
    assert_eq!(f.ring_entry(2), None, "nothing of the loser's write landed");
}

#[test]
fn a_revoked_grant_cuts_the_leader_off_before_anyone_else_is_granted() {
    // The follower moves to a higher term with nobody to grant (it campaigns): it revokes.
    let mut f = follower();
    let mut l1 = RdmaTransport::new(node(1, 0, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    let mut l2 = RdmaTransport::new(node(2, 2, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    until_up(&mut [&mut f, &mut l1, &mut l2], 1, FOLLOWER);
    until_up(&mut [&mut f, &mut l1, &mut l2], 2, FOLLOWER);
    let g1 = f.grant_ring(1, 1).unwrap();
    l1.accept_ring_grant(FOLLOWER, g1);
    l1.ring_append(FOLLOWER, 1, 1, 1, 0, b"from leader 1")
        .unwrap();
    assert_eq!(appends(&mut [&mut f, &mut l1, &mut l2], 1)[0].from, 1);
    assert_eq!(f.revoke_ring(), Some((1, 1)));
    assert_eq!(f.revoke_ring(), None, "nothing left to revoke");
    assert_eq!(f.ring_stats().revocations, 1);
    let before = f.ring_stats().appends_delivered;
    l1.ring_append(FOLLOWER, 1, 2, 1, 1, b"STALE after the revocation")
        .unwrap();
    let reason = until_cut_off(&mut [&mut f, &mut l1, &mut l2], 1);
    assert!(
        matches!(reason, DownReason::Io { .. } | DownReason::Closed),
        "{reason:?}"
    );
    assert_eq!(f.ring_entry(2), None, "nothing of the revoked write landed");
    assert_eq!(f.ring_stats().appends_delivered, before);
    assert!(
        f.grant_ring(2, 1).is_err(),
        "the revoked term is never granted again"
    );
    // The next term's leader gets a fresh registration and writes.
    let g2 = f.grant_ring(2, 2).unwrap();
    assert_ne!(g1.rkey, g2.rkey);
    l2.accept_ring_grant(FOLLOWER, g2);
    l2.ring_append(FOLLOWER, 2, 2, 2, 1, b"from leader 2")
        .unwrap();
    let got = appends(&mut [&mut f, &mut l1, &mut l2], 1);
    assert_eq!((got[0].from, got[0].index), (2, 2));
}

#[test]
fn a_deposed_leader_cannot_write_after_the_follower_grants_a_higher_term() {
    let mut f = follower();
    let mut l1 = RdmaTransport::new(node(1, 0, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    let mut l2 = RdmaTransport::new(node(2, 2, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    depose(&mut f, &mut l1, &mut l2);
    check_deposed(&mut f, &mut l1, &mut l2);
}

#[test]
fn a_leader_deposed_while_partitioned_cannot_write_after_the_partition_heals() {
    let netdev = guest("AURORA_RDMA_NETDEV0");
    let mut f = follower();
    let mut l1 = RdmaTransport::new(node(1, 0, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    let mut l2 = RdmaTransport::new(node(2, 2, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    until_up(&mut [&mut f, &mut l1, &mut l2], 1, FOLLOWER);
    until_up(&mut [&mut f, &mut l1, &mut l2], 2, FOLLOWER);
    let g1 = f.grant_ring(1, 1).unwrap();
    l1.accept_ring_grant(FOLLOWER, g1);
    // Leader 1 (on veth0) is cut off; the follower elects leader 2.
    let partition = Partition::new(&netdev);
    let g2 = f.grant_ring(2, 2).unwrap();
    l2.accept_ring_grant(FOLLOWER, g2);
    l2.ring_append(FOLLOWER, 2, 1, 2, 0, b"from leader 2")
        .unwrap();
    assert_eq!(appends(&mut [&mut f, &mut l1, &mut l2], 1)[0].from, 2);
    // Leader 1 still believes in term 1 and writes into the partition, which then heals.
    l1.ring_append(FOLLOWER, 1, 1, 1, 0, b"STALE").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    partition.heal();
    until_cut_off(&mut [&mut f, &mut l1, &mut l2], 1);
    assert_eq!(
        f.ring_entry(1),
        Some(&b"from leader 2"[..]),
        "the stale write did not land"
    );
    // Reconnected, leader 1 still holds only the dead term-1 grant: refused at the follower's NIC.
    until_up(&mut [&mut f, &mut l1, &mut l2], 1, FOLLOWER);
    l1.ring_append(FOLLOWER, 1, 2, 1, 0, b"STALE again")
        .unwrap();
    until_cut_off(&mut [&mut f, &mut l1, &mut l2], 1);
    assert_eq!(f.ring_entry(2), None);
    assert_eq!(f.ring_stats().appends_delivered, 1);
}

/// The child half of the kill test: leader 1 in its own process, writing until killed.
#[test]
#[ignore = "run as a child process by a_killed_leader_is_replaced_and_the_follower_keeps_serving"]
fn child_leader_writes_until_killed() {
    let target = std::env::var("AURORA_RING_FOLLOWER").expect("set by the parent test");
    let grant = std::env::var("AURORA_RING_GRANT").expect("set by the parent test");
    let grant_bytes: Vec<u8> = (0..grant.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&grant[i..i + 2], 16).unwrap())
        .collect();
    let grant = RingGrant::from_bytes(&grant_bytes).unwrap();
    let mut l1 =
        RdmaTransport::new(node(1, 0, &[(FOLLOWER, target.parse().unwrap())], &[])).unwrap();
    until_up(&mut [&mut l1], 0, FOLLOWER);
    l1.accept_ring_grant(FOLLOWER, grant);
    let mut index = 1;
    loop {
        if l1
            .ring_append(FOLLOWER, grant.term, index, grant.term, 0, b"from leader 1")
            .is_ok()
        {
            index += 1;
        }
        let mut events = Vec::with_capacity(16);
        l1.poll(now_ns(), &mut events).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_killed_leader_is_replaced_and_the_follower_keeps_serving() {
    let mut f = follower();
    let g1 = f.grant_ring(1, 1).unwrap();
    let hex: String = g1.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_leader_writes_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("AURORA_RING_FOLLOWER", addr_of(&f).to_string())
        .env("AURORA_RING_GRANT", hex)
        .spawn()
        .unwrap();
    let got = appends(&mut [&mut f], 2);
    assert!(got.iter().all(|a| a.from == 1 && a.leader_term == 1));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    pump(&mut [&mut f], "PeerDown of the killed leader", |_, e| {
        is_down(&e, 1)
    });

    let mut l2 = RdmaTransport::new(node(2, 2, &[(FOLLOWER, addr_of(&f))], &[])).unwrap();
    until_up(&mut [&mut f, &mut l2], 1, FOLLOWER);
    let g2 = f.grant_ring(2, 2).unwrap();
    l2.accept_ring_grant(FOLLOWER, g2);
    let next = got.last().unwrap().index + 1;
    l2.ring_append(FOLLOWER, 2, next, 2, next - 1, b"from leader 2")
        .unwrap();
    let mut after = Vec::with_capacity(64);
    pump_until(&mut [&mut f, &mut l2], "leader 2's entry", |ts| {
        ts[0].take_ring_appends(&mut after);
        after.iter().any(|a| a.from == 2)
    });
    let last = after.last().unwrap();
    assert_eq!((last.from, last.index, last.leader_term), (2, next, 2));
    assert_eq!(f.ring_entry(next), Some(&b"from leader 2"[..]));
}
