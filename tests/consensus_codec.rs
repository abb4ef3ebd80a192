//! The consensus codec: every message survives a round trip, and no byte string makes the decoder
//! panic or accept a truncated message.

mod consensus_support;

use aurora::consensus::codec::{self, DecodeError};
use aurora::consensus::{
    Append, AppendResponse, EntryKind, HardState, InstallSnapshot, LogRange, Message, Node,
    OutMessage, Restored, SnapshotMeta, TimeoutNow, VoteRequest, VoteResponse,
};
use aurora::wire::ConsensusKind;
use consensus_support::{config, majority};
use proptest::prelude::*;

/// A node whose log holds `payloads` at indexes 1.. with non-decreasing terms from `terms`.
fn node_with(payloads: &[(u64, Vec<u8>)]) -> Node {
    let mut term = 1;
    let entries = payloads
        .iter()
        .enumerate()
        .map(|(i, (bump, p))| {
            term += bump % 2;
            aurora::consensus::Entry {
                term,
                index: i as u64 + 1,
                kind: EntryKind::Normal,
                payload: p.clone(),
            }
        })
        .collect();
    let restored = Restored {
        hard_state: HardState {
            term: term + 1,
            vote: None,
            commit: 0,
        },
        snapshot: None,
        entries,
    };
    Node::new(config(1, majority(&[1, 2, 3], &[4])), restored, 0, 1).expect("node")
}

fn small_message() -> impl Strategy<Value = OutMessage> {
    let term = 1..1000u64;
    prop_oneof![
        (
            term.clone(),
            0..1000u64,
            any::<bool>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(term, index, reject, ctx_ns, seq)| {
                Message::AppendResponse(AppendResponse {
                    term,
                    index,
                    reject,
                    hint_index: index / 2,
                    hint_term: term / 2,
                    ctx_ns,
                    seq,
                })
            }),
        (term.clone(), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
            |(term, last_index, pre_vote, transfer)| Message::Vote(VoteRequest {
                term,
                last_index,
                last_term: term - 1,
                pre_vote,
                transfer,
            })
        ),
        (term.clone(), any::<bool>(), any::<bool>()).prop_map(|(term, pre_vote, granted)| {
            Message::VoteResponse(VoteResponse {
                term,
                pre_vote,
                granted,
            })
        }),
        term.clone()
            .prop_map(|term| Message::TimeoutNow(TimeoutNow { term })),
        (term, 1..100u64, any::<u64>()).prop_map(|(term, index, ctx_ns)| {
            Message::InstallSnapshot(InstallSnapshot {
                term,
                meta: SnapshotMeta {
                    index,
                    term,
                    membership: majority(&[1, 2, 3], &[4, 5]),
                },
                ctx_ns,
                seq: 3,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn append_round_trips_with_entries(
        payloads in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)), 1..20),
        commit in any::<u64>(),
        ctx_ns in any::<u64>(),
    ) {
        let node = node_with(&payloads);
        let log = node.log();
        let last = log.last_index();
        let append = Append {
            term: node.term(),
            prev_index: 0,
            prev_term: 0,
            commit,
            ctx_ns,
            seq: 7,
            entries: LogRange { first: 1, last },
        };
        let mut buf = vec![0u8; 8192];
        let (kind, len) = codec::encode(&Message::Append(append), log, &[], &mut buf).expect("fits");
        let decoded = codec::decode(kind, &buf[..len]).expect("round trip");
        let Message::Append(got) = decoded.message else { panic!("not an append: {:?}", decoded.message) };
        prop_assert_eq!((got.term, got.prev_index, got.prev_term, got.commit, got.ctx_ns, got.seq),
            (append.term, 0, 0, commit, ctx_ns, 7));
        prop_assert_eq!(got.entries.len() as u64, last);
        for (view, entry) in got.entries.iter().zip(log.entries(1, last)) {
            prop_assert_eq!(view.term, entry.term);
            prop_assert_eq!(view.kind, entry.kind);
            prop_assert_eq!(view.payload, &entry.payload[..]);
        }
        // Every strict prefix is rejected as truncated, never misread.
        for cut in 0..len {
            prop_assert!(codec::decode(kind, &buf[..cut]).is_err());
        }
    }

    #[test]
    fn small_messages_round_trip(message in small_message(), data in prop::collection::vec(any::<u8>(), 0..32)) {
        let node = node_with(&[]);
        let mut buf = vec![0u8; 1024];
        let (kind, len) = codec::encode(&message, node.log(), &data, &mut buf).expect("fits");
        let decoded = codec::decode(kind, &buf[..len]).expect("round trip");
        let back: OutMessage = match decoded.message {
            Message::AppendResponse(m) => Message::AppendResponse(m),
            Message::Vote(m) => Message::Vote(m),
            Message::VoteResponse(m) => Message::VoteResponse(m),
            Message::TimeoutNow(m) => Message::TimeoutNow(m),
            Message::InstallSnapshot(m) => {
                prop_assert_eq!(decoded.snapshot_data, &data[..]);
                Message::InstallSnapshot(m)
            }
            Message::Append(_) => panic!("no append generated"),
        };
        prop_assert_eq!(back, message);
    }

    #[test]
    fn decoder_never_panics(code in 0..ConsensusKind::COUNT, bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let kind = ConsensusKind::new(code).expect("code < COUNT");
        let _ = codec::decode(kind, &bytes);
    }
}

#[test]
fn unknown_code_and_zero_term_are_named() {
    let kind = ConsensusKind::new(31).expect("31 < 32");
    assert_eq!(
        codec::decode(kind, &1u64.to_le_bytes()).unwrap_err(),
        DecodeError::UnknownCode(31)
    );
    let kind = ConsensusKind::new(5).expect("5 < 32");
    assert!(matches!(
        codec::decode(kind, &0u64.to_le_bytes()),
        Err(DecodeError::Invalid { field: "term", .. })
    ));
}

#[test]
fn too_small_buffer_is_an_error_not_a_panic() {
    let node = node_with(&[(0, vec![1; 100])]);
    let append = Append {
        term: 2,
        prev_index: 0,
        prev_term: 0,
        commit: 0,
        ctx_ns: 0,
        seq: 1,
        entries: LogRange { first: 1, last: 1 },
    };
    let mut buf = [0u8; 64];
    let err = codec::encode(&Message::Append(append), node.log(), &[], &mut buf).unwrap_err();
    assert!(
        matches!(err, codec::EncodeError::BufferTooSmall { have: 64, .. }),
        "{err}"
    );
}
