//! Named behaviours of the consensus core, each in the smallest cluster that shows it.

mod consensus_support;

use aurora::consensus::codec;
use aurora::consensus::{
    Append, HardState, LogRange, Message, Node, ProposeError, ReadMode, Restored, Role,
    TransferError, VoteResponse,
};
use consensus_support::{config, entry, majority, Cluster, MS};

#[test]
fn elects_one_leader_and_replicates_in_order() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    for i in 0..10u8 {
        c.node_mut(leader).propose(&[i]).expect("leader accepts");
    }
    c.run(50);
    let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
    for id in 1..=3 {
        assert_eq!(
            c.applied_normal(id),
            expected,
            "node {id} applied the same sequence"
        );
    }
    assert_eq!(c.leaders().len(), 1);
}

#[test]
fn batch_of_proposals_travels_in_one_append() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let payloads: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d"];
    let p = c
        .node_mut(leader)
        .propose_batch(payloads.iter().copied())
        .expect("accepted");
    assert_eq!(p.last - p.first, 3);
    let ready = c.node_mut(leader).ready();
    let appends: Vec<u64> = ready
        .messages()
        .iter()
        .filter_map(|e| match e.message {
            Message::Append(a) => Some(a.entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        appends,
        vec![4, 4],
        "one append of all four entries per follower"
    );
    c.node_mut(leader).advance();
}

#[test]
fn deposed_leader_cannot_commit() {
    let mut c = Cluster::new(3, 0);
    let old = c.elect();
    let old_term = c.node(old).term();
    c.isolate(old);
    let commit_before = c.node(old).commit_index();
    c.node_mut(old)
        .propose(b"lost")
        .expect("still believes it leads");
    let new = c.run_until(2_000, |c| c.leader().is_some_and(|l| l != old));
    assert!(new, "the majority elects a new leader");
    let new = c.leader().expect("leader");
    assert!(c.node(new).term() > old_term);
    assert_eq!(
        c.node(old).commit_index(),
        commit_before,
        "the isolated leader commits nothing"
    );
    c.node_mut(new)
        .propose(b"kept")
        .expect("new leader accepts");
    c.heal();
    c.run(300);
    assert_ne!(
        c.node(old).role(),
        Role::Leader,
        "the old leader stepped down"
    );
    for id in 1..=3 {
        let applied = c.applied_normal(id);
        assert!(
            !applied.contains(&b"lost".to_vec()),
            "node {id} never applies the deposed leader's entry"
        );
        assert!(
            applied.contains(&b"kept".to_vec()),
            "node {id} applies the new leader's entry"
        );
    }
}

#[test]
fn prevote_does_not_disrupt_stable_leader() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let term = c.node(leader).term();
    let loner = (1..=3).find(|&id| id != leader).expect("a follower");
    c.isolate(loner);
    c.run(1_000);
    assert_eq!(
        c.node(loner).term(),
        term,
        "PreVote keeps the isolated node's term"
    );
    c.heal();
    c.run(300);
    assert_eq!(
        c.leader(),
        Some(leader),
        "the leader survives the node's return"
    );
    assert_eq!(c.node(leader).term(), term, "no term bump");
}

#[test]
fn learner_never_votes() {
    let mut c = Cluster::new(3, 1);
    let leader = c.elect();
    c.node_mut(leader).propose(b"x").expect("accepted");
    c.run(100);
    assert_eq!(c.node(4).role(), Role::Learner);
    assert!(
        c.applied_normal(4).contains(&b"x".to_vec()),
        "the learner receives the log"
    );

    // The learner is never asked for a vote, and its grant would not count.
    let membership = majority(&[1, 2, 3], &[4]);
    let mut candidate = Node::new(config(1, membership), Restored::default(), 0, 1).expect("node");
    candidate.tick(1_000 * MS);
    assert_eq!(candidate.role(), Role::PreCandidate);
    let ready = candidate.ready();
    let asked: Vec<u64> = ready.messages().iter().map(|e| e.to).collect();
    assert_eq!(asked, vec![2, 3], "pre-votes go to voters only");
    candidate.advance();
    let grant = VoteResponse {
        term: 1,
        pre_vote: true,
        granted: true,
    };
    candidate
        .step(4, Message::VoteResponse(grant))
        .expect("step");
    assert_eq!(
        candidate.role(),
        Role::PreCandidate,
        "a learner's grant does not count"
    );
    candidate
        .step(2, Message::VoteResponse(grant))
        .expect("step");
    assert_eq!(candidate.role(), Role::Candidate, "a voter's grant does");

    // ... and its clock never makes it campaign.
    let mut learner = Node::new(
        config(4, majority(&[1, 2, 3], &[4])),
        Restored::default(),
        0,
        1,
    )
    .expect("node");
    learner.tick(10_000 * MS);
    assert_eq!(learner.role(), Role::Learner);
    assert!(!learner.has_ready());
}

#[test]
fn joint_config_needs_both_quorums() {
    // Voters {1,2,3}; 4 and 5 learn. Move to voters {L,4,5}.
    let mut c = Cluster::new(3, 2);
    let leader = c.elect();
    let others: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let target = majority(&[leader, 4, 5], &others);
    c.cut.insert((leader, 4));
    c.cut.insert((leader, 5));
    let change = c
        .node_mut(leader)
        .propose_conf_change(target)
        .expect("change accepted");
    assert!(c.node(leader).membership().is_joint());
    c.run(200);
    assert!(
        c.node(leader).commit_index() < change.first,
        "the old voters alone cannot commit C_old,new"
    );
    c.heal();
    let done = c.run_until(3_000, |c| {
        c.leader().is_some_and(|l| {
            let n = c.node(l);
            !n.membership().is_joint() && n.commit_index() >= n.log().last_index()
        })
    });
    assert!(done, "C_new followed C_old,new");
    let m = *c.node(c.leader().expect("leader")).membership();
    assert_eq!(m.incoming().voters().as_slice(), &[leader, 4, 5]);
    for id in others {
        assert_eq!(
            c.node(id).role(),
            Role::Learner,
            "removed voter {id} became a learner"
        );
    }
    let leader = c.leader().expect("leader");
    c.node_mut(leader).propose(b"after").expect("accepted");
    c.run(100);
    assert!(c.applied_normal(4).contains(&b"after".to_vec()));
}

#[test]
fn one_membership_change_at_a_time() {
    let mut c = Cluster::new(3, 2);
    let leader = c.elect();
    c.cut.insert((leader, 4));
    c.cut.insert((leader, 5));
    c.node_mut(leader)
        .propose_conf_change(majority(&[leader, 4, 5], &[]))
        .expect("first change");
    let second = c
        .node_mut(leader)
        .propose_conf_change(majority(&[1, 2, 3, 4, 5], &[]));
    assert!(
        matches!(second, Err(ProposeError::ChangeInProgress { .. })),
        "{second:?}"
    );
}

#[test]
fn lease_read_refused_before_first_commit() {
    let mut c = Cluster::new(3, 0);
    let ok = (0..5_000).any(|_| c.tick_until(MS, |c| c.leader().is_some()));
    assert!(ok, "a leader within 5 s");
    // Stop right after the election: the new leader's no-op is not committed yet.
    let leader = c.leader().expect("leader");
    let n = c.node_mut(leader);
    assert_ne!(n.log().term(n.commit_index()), Some(n.term()));
    assert!(
        !n.lease_valid(),
        "no lease before an entry of the term commits"
    );
    n.read(7, ReadMode::Lease).expect("queued");
    assert_eq!(
        n.stats().lease_fallbacks,
        1,
        "the read fell back to ReadIndex"
    );
    assert!(c.reads[(leader - 1) as usize].is_empty());
    c.run(50);
    let reads = &c.reads[(leader - 1) as usize];
    assert_eq!(reads.len(), 1);
    let index = reads[0].outcome.expect("served");
    assert!(
        index >= c.node(leader).log().first_index(),
        "read index covers the no-op"
    );
}

#[test]
fn lease_read_is_served_without_a_round_trip() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    c.run(30);
    let n = c.node_mut(leader);
    assert!(n.lease_valid());
    n.read(1, ReadMode::Lease).expect("accepted");
    let ready = n.ready();
    assert_eq!(ready.reads().len(), 1, "served in the same iteration");
    assert_eq!(ready.reads()[0].outcome, Ok(n_commit(&ready)));
    assert!(ready.messages().is_empty(), "no heartbeat round needed");
    n.advance();
    assert_eq!(n.stats().lease_fallbacks, 0);
}

fn n_commit(ready: &aurora::consensus::Ready<'_>) -> u64 {
    ready.log().last_index()
}

#[test]
fn lease_expires_when_followers_go_silent() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    c.run(30);
    assert!(c.node(leader).lease_valid());
    c.isolate(leader);
    // election_timeout_min (100 ms) - drift (5 ms) after the last acknowledged heartbeat.
    c.run(96);
    assert!(
        !c.node(leader).lease_valid(),
        "the lease lapsed before any follower may vote again"
    );
    let n = c.node_mut(leader);
    n.read(3, ReadMode::Lease).expect("queued as ReadIndex");
    assert_eq!(n.stats().lease_fallbacks, 1);
}

#[test]
fn read_index_waits_for_a_quorum_round() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    c.isolate(leader);
    c.node_mut(leader)
        .read(9, ReadMode::ReadIndex)
        .expect("queued");
    c.run(10);
    assert!(
        c.reads[(leader - 1) as usize].is_empty(),
        "no confirmation without acknowledgements"
    );
    c.heal();
    c.run(30);
    assert_eq!(c.reads[(leader - 1) as usize].len(), 1);
    assert!(c.reads[(leader - 1) as usize][0].outcome.is_ok());
}

#[test]
fn stale_read_is_served_by_a_follower() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let follower = (1..=3).find(|&id| id != leader).expect("follower");
    let n = c.node_mut(follower);
    assert!(
        n.read(1, ReadMode::ReadIndex).is_err(),
        "linearizable reads go to the leader"
    );
    n.read(2, ReadMode::Stale).expect("stale read");
    c.process(follower);
    assert_eq!(c.reads[(follower - 1) as usize].len(), 1);
}

#[test]
fn transfer_hands_leadership_to_the_target() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let target = (1..=3).find(|&id| id != leader).expect("follower");
    let term = c.node(leader).term();
    c.node_mut(leader).propose(b"before").expect("accepted");
    c.node_mut(leader)
        .transfer_leader(target)
        .expect("transfer starts");
    assert_eq!(
        c.node_mut(leader).propose(b"during"),
        Err(ProposeError::TransferInProgress { to: target })
    );
    assert!(
        !c.node(leader).lease_valid(),
        "no lease reads once a transfer is under way"
    );
    c.run(20);
    assert_eq!(c.leader(), Some(target));
    assert_eq!(c.node(target).term(), term + 1);
    assert!(c.applied_normal(target).contains(&b"before".to_vec()));
}

#[test]
fn transfer_aborts_after_an_election_timeout() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let target = (1..=3).find(|&id| id != leader).expect("follower");
    c.isolate(target);
    c.node_mut(leader).propose(b"x").expect("accepted");
    c.run(5);
    c.node_mut(leader)
        .transfer_leader(target)
        .expect("transfer starts");
    let other = (1..=3)
        .find(|&id| id != leader && id != target)
        .expect("third");
    assert_eq!(
        c.node_mut(leader).transfer_leader(other),
        Err(TransferError::InProgress { to: target })
    );
    c.run(101);
    assert_eq!(c.leader(), Some(leader));
    c.node_mut(leader)
        .propose(b"after")
        .expect("proposals resume after the abort");
}

#[test]
fn snapshot_brings_a_lagging_follower_up() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let lagging = (1..=3).find(|&id| id != leader).expect("follower");
    c.isolate(lagging);
    for i in 0..20u8 {
        c.node_mut(leader).propose(&[i]).expect("accepted");
    }
    c.run(30);
    let applied = c.node(leader).applied_index();
    let meta = c.node_mut(leader).compact(applied).expect("compact");
    assert_eq!(c.node(leader).log().first_index(), meta.index + 1);
    c.heal();
    c.run(200);
    let n = c.node(lagging);
    assert!(
        n.log().snapshot().index >= meta.index,
        "the follower installed the snapshot"
    );
    assert_eq!(n.commit_index(), c.node(leader).commit_index());
}

#[test]
fn acknowledgements_wait_for_persistence() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    let follower = (1..=3).find(|&id| id != leader).expect("follower");
    let other = (1..=3)
        .find(|&id| id != leader && id != follower)
        .expect("third");
    c.isolate(other);
    c.paused_disk.insert(follower);
    let p = c.node_mut(leader).propose(b"durable").expect("accepted");
    c.run(50);
    assert!(
        c.node(leader).commit_index() < p.last,
        "no commit while the only follower's write is pending"
    );
    c.release_disk(follower);
    c.run(5);
    assert!(
        c.node(leader).commit_index() >= p.last,
        "commit follows the follower's fsync"
    );
}

#[test]
fn check_quorum_steps_down_an_isolated_leader() {
    let mut c = Cluster::new(3, 0);
    let leader = c.elect();
    c.isolate(leader);
    c.run(250);
    assert_ne!(c.node(leader).role(), Role::Leader);
}

#[test]
fn append_never_rewrites_committed_entries() {
    let membership = majority(&[1, 2, 3], &[]);
    let restored = |entries, term, commit| Restored {
        hard_state: HardState {
            term,
            vote: None,
            commit,
        },
        snapshot: None,
        entries,
    };
    // Node 2 has committed [t1, t1]; a forged "leader" of term 2 claims index 2 is of term 2.
    let mut follower = Node::new(
        config(2, membership),
        restored(vec![entry(1, 1, b"a"), entry(2, 1, b"b")], 1, 2),
        0,
        1,
    )
    .expect("node");
    let forger = Node::new(
        config(1, membership),
        restored(vec![entry(1, 1, b"a"), entry(2, 2, b"evil")], 2, 0),
        0,
        1,
    )
    .expect("node");
    let append = Append {
        term: 2,
        prev_index: 1,
        prev_term: 1,
        commit: 0,
        ctx_ns: 0,
        seq: 1,
        entries: LogRange { first: 2, last: 2 },
    };
    let mut buf = [0u8; 256];
    let (kind, len) =
        codec::encode(&Message::Append(append), forger.log(), &[], &mut buf).expect("encode");
    let message = codec::decode(kind, &buf[..len]).expect("decode").message;
    follower
        .step(1, message)
        .expect("a well-formed append is accepted");
    assert_eq!(follower.commit_index(), 2);
    assert_eq!(
        follower.log().entry(2).map(|e| e.payload.clone()),
        Some(b"b".to_vec()),
        "log unchanged"
    );
}

#[test]
fn the_log_refuses_proposals_past_its_payload_bytes_until_compacted() {
    let membership = majority(&[1, 2, 3], &[]);
    let mut c = Cluster::with(3, |id| {
        let mut cfg = config(id, membership);
        cfg.max_entry_bytes = 4_000;
        cfg.max_log_bytes = 10_000;
        cfg
    });
    let leader = c.elect();
    let value = [7u8; 3_000];
    for _ in 0..3 {
        c.node_mut(leader).propose(&value).expect("fits the bytes");
    }
    let held = c.node(leader).log().payload_bytes();
    assert!((9_000..10_000).contains(&held), "{held} payload bytes held");
    match c.node_mut(leader).propose(&value) {
        Err(ProposeError::LogFull {
            bytes, limit_bytes, ..
        }) => assert_eq!((bytes, limit_bytes), (held, 10_000)),
        other => panic!("expected LogFull by bytes, got {other:?}"),
    }
    // A small entry still fits; then commit, apply and compact frees the bytes.
    c.node_mut(leader)
        .propose(&[1; 500])
        .expect("500 bytes fit");
    c.run(50);
    let commit = c.node(leader).commit_index();
    c.node_mut(leader)
        .compact(commit)
        .expect("compact the applied log");
    assert!(c.node(leader).log().payload_bytes() < 3_000);
    c.node_mut(leader)
        .propose(&value)
        .expect("room again after compaction");
}
