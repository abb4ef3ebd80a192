//! Regressions found by the simulator (`hack/sim.sh`), each replayed in the smallest world that
//! shows it. The seed that found each one is named in its doc comment.

mod consensus_support;

use aurora::consensus::codec;
use aurora::consensus::{Message, Node, Restored, Role, VoteRequest, VoteResponse};
use consensus_support::{config, entry, majority};

/// Steps `message` into `node` through the codec, as a host would.
fn step(node: &mut Node, from: u64, message: aurora::consensus::OutMessage, log: &Node) {
    let mut buf = vec![0u8; 1 << 16];
    let (kind, len) = codec::encode(&message, log.log(), &[], &mut buf).expect("encode");
    let decoded = codec::decode(kind, &buf[..len]).expect("decode");
    node.step(from, decoded.message).expect("step");
}

/// Drains `node`'s messages (acknowledging persistence at once) and returns them.
fn drain(node: &mut Node) -> Vec<aurora::consensus::Envelope> {
    let mut out = Vec::new();
    for _ in 0..8 {
        if !node.has_ready() {
            break;
        }
        let ready = node.ready();
        out.extend_from_slice(ready.messages());
        let persist = ready.persist().copied();
        node.advance();
        if let Some(p) = persist {
            node.persisted(p.id);
        }
    }
    out
}

/// Seeds 1018 and 1405: with an election quorum of every voter and PreVote off, a node with a stale
/// log campaigned again and again; each of its vote requests bumped the up-to-date voters' term and
/// reset their election timers although they denied it, so none of them ever campaigned first and
/// the cluster stayed leaderless after every fault healed.
#[test]
fn denying_a_stale_candidate_does_not_postpone_the_own_election() {
    let m = majority(&[1, 2, 3], &[]);
    let mut cfg = config(2, m);
    cfg.pre_vote = false;
    let min = cfg.election_timeout_min_ns;
    let max = cfg.election_timeout_max_ns;
    let restored = Restored {
        hard_state: aurora::consensus::HardState {
            term: 1,
            vote: None,
            commit: 0,
        },
        snapshot: None,
        entries: vec![entry(1, 1, b"a"), entry(2, 1, b"b")],
    };
    let mut node = Node::new(cfg.clone(), restored, 0, 99).expect("valid");
    // A stale candidate for the replies' encoding context (its log is empty).
    let stale = Node::new(config(3, m), Restored::default(), 0, 1).expect("valid");
    drain(&mut node);
    // The start-up promise has run out; the own deadline lies in [min, max).
    node.tick(min);
    assert_eq!(
        node.role(),
        Role::Follower,
        "seed 99 draws a deadline past min"
    );
    let request = Message::Vote(VoteRequest {
        term: 5,
        last_index: 0,
        last_term: 0,
        pre_vote: false,
        transfer: false,
    });
    step(&mut node, 3, request, &stale);
    let replies = drain(&mut node);
    assert!(
        replies.iter().any(|e| e.to == 3
            && matches!(
                e.message,
                Message::VoteResponse(VoteResponse {
                    granted: false,
                    term: 5,
                    ..
                })
            )),
        "the stale candidate is denied in its term: {replies:?}"
    );
    assert_eq!(node.term(), 5);
    // The original deadline (< max) still holds: by then the node campaigns itself.
    node.tick(max);
    assert_eq!(
        node.role(),
        Role::Candidate,
        "the up-to-date node campaigns at its own deadline, not one reset by the denied request"
    );
    assert_eq!(node.term(), 6);
}

/// Lost attempt, seed 23: a vote request from an older term was dropped without an answer, so a
/// candidate far behind in terms only caught up one election timeout per term. It is denied with
/// the current term, which makes the candidate step up at once.
#[test]
fn stale_vote_request_is_answered_with_the_current_term() {
    let m = majority(&[1, 2, 3], &[]);
    let restored = Restored {
        hard_state: aurora::consensus::HardState {
            term: 7,
            vote: None,
            commit: 0,
        },
        ..Restored::default()
    };
    let mut node = Node::new(config(2, m), restored, 0, 5).expect("valid");
    let stale = Node::new(config(3, m), Restored::default(), 0, 1).expect("valid");
    drain(&mut node);
    for pre_vote in [false, true] {
        let request = Message::Vote(VoteRequest {
            term: 3,
            last_index: 0,
            last_term: 0,
            pre_vote,
            transfer: false,
        });
        step(&mut node, 3, request, &stale);
        let replies = drain(&mut node);
        assert!(
            replies.iter().any(|e| e.to == 3
                && e.message
                    == Message::VoteResponse(VoteResponse {
                        term: 7,
                        pre_vote,
                        granted: false
                    })),
            "denied with term 7 (pre_vote {pre_vote}): {replies:?}"
        );
    }
    assert_eq!(node.term(), 7);
}

/// Lost attempt: while a ReadIndex read waited for its confirmation round, `has_ready` stayed true
/// although `ready` had nothing to hand out, so a host that drains while `has_ready` spun.
#[test]
fn waiting_read_index_does_not_keep_has_ready_true() {
    let mut c = consensus_support::Cluster::new(3, 0);
    let leader = c.elect();
    c.isolate(leader);
    c.node_mut(leader)
        .read(1, aurora::consensus::ReadMode::ReadIndex)
        .expect("the leader accepts the read");
    c.process(leader);
    assert!(
        !c.node(leader).has_ready(),
        "nothing is due until followers confirm the round"
    );
    assert!(c.reads[(leader - 1) as usize].is_empty(), "not served yet");
}

/// Simulator seeds 584, 585, 589 (and many more): a follower was cut off while appends to it were in
/// flight, and the leader compacted its log past the follower's next index. The follower's window
/// (or probe) stayed blocked, heartbeats skipped it because they cannot name a compacted entry, and
/// the snapshot was never sent: the follower stayed behind forever after the partition healed.
#[test]
fn follower_blocked_behind_a_compaction_gets_the_snapshot() {
    let mut c = consensus_support::Cluster::new(3, 0);
    let leader = c.elect();
    let behind = if leader == 3 { 2 } else { 3 };
    c.isolate(behind);
    for i in 0..40u8 {
        c.node_mut(leader).propose(&[i]).expect("leader accepts");
        c.tick(consensus_support::MS);
    }
    let applied = c.node(leader).applied_index();
    c.node_mut(leader)
        .compact(applied)
        .expect("compact the applied prefix");
    assert!(
        c.node(leader)
            .progress(behind)
            .is_some_and(|p| p.next <= applied),
        "the cut-off follower needs compacted entries"
    );
    c.heal();
    let caught_up = c.run_until(3_000, |c| c.node(behind).commit_index() >= applied);
    assert!(
        caught_up,
        "follower stuck at commit {} below the leader's {applied}",
        c.node(behind).commit_index()
    );
}

/// Lost attempt: in `memory` durability a restarted follower keeps term and vote but loses its log.
/// The leader's progress still said "matched up to m"; the follower's rejection of the next
/// heartbeat (at m) was ignored as stale because it was not above `matched`, so the follower was
/// never re-probed and never caught up. A rejection whose hint lies below `matched` now resets the
/// progress to probe from the hint.
#[test]
fn follower_that_lost_its_log_is_probed_again() {
    let mut c = consensus_support::Cluster::new(3, 0);
    let leader = c.elect();
    for i in 0..20u8 {
        c.node_mut(leader).propose(&[i]).expect("leader accepts");
        c.tick(consensus_support::MS);
    }
    c.run(50);
    let lost = if leader == 3 { 2 } else { 3 };
    let commit = c.node(leader).commit_index();
    assert!(c
        .node(leader)
        .progress(lost)
        .is_some_and(|p| p.matched >= commit));
    // Memory mode restart: term and vote survive, the log does not.
    let hard = c.node(lost).hard_state();
    let cfg = c.node(lost).config().clone();
    let now = c.now_ns;
    c.nodes[(lost - 1) as usize] = Node::new(
        cfg,
        Restored {
            hard_state: aurora::consensus::HardState { commit: 0, ..hard },
            ..Restored::default()
        },
        now,
        77,
    )
    .expect("restart with an empty log");
    let caught_up = c.run_until(3_000, |c| c.node(lost).commit_index() >= commit);
    assert!(
        caught_up,
        "follower stuck at commit {} below {commit}; leader's progress {:?}",
        c.node(lost).commit_index(),
        c.node(leader).progress(lost)
    );
}
