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
