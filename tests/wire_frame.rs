//! The frame format from the outside: round trips, the two decoding paths, and one test per way a
//! frame can be malformed.

use aurora::wire::{
    encode_into, encode_payload, ConsensusKind, EncodeError, FrameBuilder, FrameHeader, FrameKind,
    FrameRules, HeaderFields, RejectReason, RulesError, WireError, HEADER_LEN, MAGIC,
    MAX_PAYLOAD_LEN_BYTES, VERSION,
};
use proptest::prelude::*;

const CLUSTER: u64 = 0xA0A0_0001;
const MAX_PAYLOAD: u32 = 4096;

fn rules() -> FrameRules {
    FrameRules::new(CLUSTER, MAX_PAYLOAD).expect("4096 is below the ceiling")
}

fn fields(kind: FrameKind) -> HeaderFields {
    HeaderFields {
        kind,
        cluster_id: CLUSTER,
        from: 1,
        to: 2,
        term: 7,
        correlation_id: 0xC0FFEE,
    }
}

/// A valid ping frame with `payload`, as a Vec holding exactly the frame.
fn ping_frame(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + payload.len()];
    let len = encode_payload(&mut buf, &fields(FrameKind::Ping), payload).expect("buffer fits");
    assert_eq!(len, buf.len());
    buf
}

/// Rewrites the header of `frame` with `edit` and fixes the checksum, so only the edited field is wrong.
fn with_header(frame: &[u8], edit: impl FnOnce(&mut FrameHeader)) -> Vec<u8> {
    let mut header = FrameHeader::read_from(frame).expect("frame has a header");
    edit(&mut header);
    header.crc32c = header.compute_crc32c(&frame[HEADER_LEN..]);
    let mut out = frame.to_vec();
    out[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&header));
    out
}

#[test]
fn encoded_frame_decodes_to_the_same_fields_and_payload_in_place() {
    let frame = ping_frame(b"hello aurora");
    let decoded = rules().decode_datagram(&frame).expect("valid frame");
    assert_eq!(decoded.header().fields(), fields(FrameKind::Ping));
    assert_eq!(decoded.payload(), b"hello aurora");
    assert_eq!(decoded.payload().as_ptr(), frame[HEADER_LEN..].as_ptr());
    assert_eq!(decoded.len_bytes(), frame.len());
}

#[test]
fn empty_payload_is_a_valid_frame() {
    let frame = ping_frame(&[]);
    assert_eq!(frame.len(), HEADER_LEN);
    let decoded = rules().decode_datagram(&frame).expect("valid frame");
    assert!(decoded.payload().is_empty());
}

#[test]
fn every_kind_round_trips() {
    let kinds = (0..=u8::MAX).filter_map(FrameKind::from_byte);
    for kind in kinds {
        let mut buf = [0u8; HEADER_LEN + 3];
        let len = encode_payload(&mut buf, &fields(kind), b"abc").expect("fits");
        let decoded = rules().decode_datagram(&buf[..len]).expect("valid frame");
        assert_eq!(decoded.header().kind(), kind);
    }
}

#[test]
fn header_alone_tells_a_stream_reader_how_many_bytes_to_wait_for() {
    let frame = ping_frame(&[5u8; 100]);
    let header = rules()
        .validate_header(&frame[..HEADER_LEN])
        .expect("header is valid");
    assert_eq!(header.frame_len_bytes(), HEADER_LEN + 100);
    assert_eq!(header.payload_len_bytes(), 100);
    assert_eq!(
        rules().validate_frame(&frame[..HEADER_LEN + 40]),
        Err(WireError::Truncated {
            need: HEADER_LEN + 100,
            have: HEADER_LEN + 40
        })
    );
    assert!(rules().validate_frame(&frame).is_ok());
}

#[test]
fn back_to_back_frames_in_a_stream_buffer_decode_one_after_another() {
    let first = ping_frame(b"one");
    let second = ping_frame(b"second frame");
    // Start at an odd offset: stream frames are not aligned in the receive buffer.
    let mut stream = vec![0xEE];
    stream.extend_from_slice(&first);
    stream.extend_from_slice(&second);
    let a = rules().validate_frame(&stream[1..]).expect("first frame");
    assert_eq!(a.payload(), b"one");
    let b = rules()
        .validate_frame(&stream[1 + a.len_bytes()..])
        .expect("second frame");
    assert_eq!(b.payload(), b"second frame");
    assert_eq!(1 + a.len_bytes() + b.len_bytes(), stream.len());
}

#[test]
fn frame_builder_encodes_a_payload_written_in_place() {
    let mut buf = [0u8; 256];
    let kind = FrameKind::Consensus(ConsensusKind::new(3).expect("3 < 32"));
    let mut builder = FrameBuilder::new(&mut buf, &fields(kind)).expect("room for a header");
    builder.payload_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
    let len = builder.finish(4).expect("4 bytes fit");
    let decoded = rules().decode_datagram(&buf[..len]).expect("valid frame");
    assert_eq!(decoded.payload(), [1, 2, 3, 4]);
    assert_eq!(decoded.header().kind(), kind);
}

#[test]
fn short_header_is_truncated() {
    let frame = ping_frame(b"x");
    assert_eq!(
        rules().validate_header(&frame[..10]),
        Err(WireError::Truncated {
            need: HEADER_LEN,
            have: 10
        })
    );
    assert_eq!(
        rules().decode_datagram(&[]),
        Err(WireError::Truncated {
            need: HEADER_LEN,
            have: 0
        })
    );
}

#[test]
fn wrong_magic_is_rejected() {
    let frame = with_header(&ping_frame(b"x"), |h| h.magic = 0x4854_5448);
    assert_eq!(
        rules().decode_datagram(&frame),
        Err(WireError::BadMagic { got: 0x4854_5448 })
    );
}

#[test]
fn other_version_is_rejected_naming_both_versions() {
    let frame = with_header(&ping_frame(b"x"), |h| h.version = VERSION + 1);
    let err = rules().decode_datagram(&frame).expect_err("version 2");
    assert_eq!(
        err,
        WireError::UnsupportedVersion {
            got: VERSION + 1,
            supported: VERSION
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("version 2") && message.contains("version 1"),
        "{message}"
    );
}

#[test]
fn unassigned_kind_bytes_are_rejected() {
    for byte in [0x00, 0x05, 0x0A, 0x1F, 0x42, 0xFF] {
        let frame = with_header(&ping_frame(b"x"), |h| h.kind = byte);
        assert_eq!(
            rules().decode_datagram(&frame),
            Err(WireError::UnknownKind { got: byte })
        );
    }
}

#[test]
fn any_flag_bit_is_reserved_in_version_1() {
    for bit in 0..16 {
        let frame = with_header(&ping_frame(b"x"), |h| h.flags = 1 << bit);
        assert_eq!(
            rules().decode_datagram(&frame),
            Err(WireError::ReservedFlags { got: 1 << bit })
        );
    }
}

#[test]
fn frame_of_another_cluster_is_rejected() {
    let frame = with_header(&ping_frame(b"x"), |h| h.cluster_id = 99);
    let err = rules()
        .decode_datagram(&frame)
        .expect_err("foreign cluster");
    assert_eq!(
        err,
        WireError::WrongCluster {
            expected: CLUSTER,
            got: 99
        }
    );
    assert!(err.to_string().contains("0x63"), "{err}");
}

#[test]
fn frame_for_another_node_is_rejected_when_the_receiver_knows_its_id() {
    let frame = ping_frame(b"x"); // to = 2
    assert!(rules().with_local_node(2).decode_datagram(&frame).is_ok());
    assert_eq!(
        rules().with_local_node(3).decode_datagram(&frame),
        Err(WireError::WrongDestination {
            expected: 3,
            got: 2
        })
    );
}

#[test]
fn frame_claiming_another_sender_fails_the_sender_check() {
    let frame = ping_frame(b"x"); // from = 1
    let decoded = rules().decode_datagram(&frame).expect("valid frame");
    assert_eq!(decoded.check_sender(1), Ok(()));
    assert_eq!(
        decoded.check_sender(4),
        Err(WireError::WrongSender {
            expected: 4,
            got: 1
        })
    );
}

#[test]
fn oversize_length_is_rejected_from_the_header_alone() {
    let frame = with_header(&ping_frame(b"x"), |h| h.length = MAX_PAYLOAD + 1);
    assert_eq!(
        rules().validate_header(&frame[..HEADER_LEN]),
        Err(WireError::Oversize {
            len: MAX_PAYLOAD + 1,
            max: MAX_PAYLOAD
        })
    );
    let huge = with_header(&ping_frame(b"x"), |h| h.length = u32::MAX);
    assert_eq!(
        rules().validate_header(&huge),
        Err(WireError::Oversize {
            len: u32::MAX,
            max: MAX_PAYLOAD
        })
    );
}

#[test]
fn corrupted_payload_fails_the_checksum() {
    let mut frame = ping_frame(b"payload");
    let expected = FrameHeader::read_from(&frame).expect("header").crc32c;
    frame[HEADER_LEN + 2] ^= 0x01;
    match rules().decode_datagram(&frame) {
        Err(WireError::BadChecksum {
            expected: carried,
            computed,
        }) => {
            assert_eq!(carried, expected);
            assert_ne!(computed, expected);
        }
        other => panic!("expected BadChecksum, got {other:?}"),
    }
}

#[test]
fn corrupted_header_field_fails_the_checksum() {
    let mut frame = ping_frame(b"payload");
    frame[32] ^= 0x80; // a bit of `term`, which no other check looks at
    assert_eq!(
        rules().decode_datagram(&frame).map_err(|e| e.reason()),
        Err(RejectReason::BadChecksum)
    );
}

#[test]
fn datagram_with_bytes_after_its_frame_is_rejected() {
    let mut frame = ping_frame(b"x");
    let frame_len = frame.len();
    frame.extend_from_slice(b"junk");
    assert_eq!(
        rules().decode_datagram(&frame),
        Err(WireError::TrailingBytes {
            frame_len,
            have: frame_len + 4
        })
    );
    // The stream path leaves the extra bytes for the next frame.
    assert!(rules().validate_frame(&frame).is_ok());
}

#[test]
fn receiver_limit_above_the_protocol_ceiling_is_refused() {
    assert_eq!(
        FrameRules::new(CLUSTER, MAX_PAYLOAD_LEN_BYTES + 1),
        Err(RulesError::MaxPayloadAboveCeiling {
            max: MAX_PAYLOAD_LEN_BYTES + 1,
            ceiling: MAX_PAYLOAD_LEN_BYTES
        })
    );
    assert!(FrameRules::new(CLUSTER, MAX_PAYLOAD_LEN_BYTES).is_ok());
}

#[test]
fn encoding_into_a_buffer_too_small_is_an_error() {
    let mut tiny = [0u8; HEADER_LEN - 1];
    assert_eq!(
        encode_into(&mut tiny, &fields(FrameKind::Ping), |_| 0),
        Err(EncodeError::BufferTooSmall {
            need: HEADER_LEN,
            have: HEADER_LEN - 1
        })
    );
    let mut small = [0u8; HEADER_LEN + 2];
    assert_eq!(
        encode_payload(&mut small, &fields(FrameKind::Ping), b"abc"),
        Err(EncodeError::BufferTooSmall {
            need: HEADER_LEN + 3,
            have: HEADER_LEN + 2
        })
    );
}

#[test]
fn payload_writer_claiming_more_than_its_room_is_an_error() {
    let mut buf = [0u8; HEADER_LEN + 8];
    assert_eq!(
        encode_into(&mut buf, &fields(FrameKind::Ping), |_| 9),
        Err(EncodeError::PayloadOverrun {
            written: 9,
            capacity: 8
        })
    );
}

#[test]
fn payload_above_the_protocol_ceiling_cannot_be_encoded() {
    let payload = vec![0u8; MAX_PAYLOAD_LEN_BYTES as usize + 1];
    let mut buf = vec![0u8; HEADER_LEN + payload.len()];
    assert_eq!(
        encode_payload(&mut buf, &fields(FrameKind::Ping), &payload),
        Err(EncodeError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN_BYTES
        })
    );
}

#[test]
fn magic_constant_is_what_the_first_bytes_carry() {
    let frame = ping_frame(b"");
    assert_eq!(&frame[..4], b"AUR1");
    assert_eq!(
        u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")),
        MAGIC
    );
}

fn any_kind() -> impl Strategy<Value = FrameKind> {
    (0..=u8::MAX)
        .prop_filter_map("assigned kind bytes only", FrameKind::from_byte)
        .boxed()
}

fn any_fields() -> impl Strategy<Value = HeaderFields> {
    (
        any_kind(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(kind, from, to, term, correlation_id)| HeaderFields {
            kind,
            cluster_id: CLUSTER,
            from,
            to,
            term,
            correlation_id,
        })
}

proptest! {
    #[test]
    fn any_fields_and_payload_round_trip_at_any_offset(
        fields in any_fields(),
        payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD as usize),
        offset in 0usize..8,
        trailing in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut buf = vec![0u8; offset + HEADER_LEN + payload.len() + trailing.len()];
        let len = encode_payload(&mut buf[offset..], &fields, &payload).expect("buffer fits");
        prop_assert_eq!(len, HEADER_LEN + payload.len());
        buf[offset + len..].copy_from_slice(&trailing);

        let header = rules().validate_header(&buf[offset..offset + HEADER_LEN]).expect("valid header");
        prop_assert_eq!(header.frame_len_bytes(), len);
        let frame = rules().validate_frame(&buf[offset..]).expect("valid stream frame");
        prop_assert_eq!(frame.header().fields(), fields);
        prop_assert_eq!(frame.payload(), &payload[..]);
        let datagram = rules().decode_datagram(&buf[offset..offset + len]).expect("valid datagram");
        prop_assert_eq!(datagram, frame);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        fields in any_fields(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        bit in any::<proptest::sample::Index>(),
    ) {
        let mut buf = vec![0u8; HEADER_LEN + payload.len()];
        encode_payload(&mut buf, &fields, &payload).expect("buffer fits");
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rules().decode_datagram(&buf).is_err());
    }
}

/// The fuzz seed corpus doubles as a fixture written by an independent encoder: each file's name
/// (up to the first `-`) says how `decode_datagram` must judge it, `ok` meaning accepted.
#[test]
fn fuzz_seed_corpus_decodes_as_its_file_names_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus_seed");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus_seed exists") {
        let path = entry.expect("readable entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name");
        let expected = stem.split('-').next().expect("split yields one item");
        let bytes = std::fs::read(&path).expect("readable seed");
        let verdict = match rules().decode_datagram(&bytes) {
            Ok(_) => "ok",
            Err(e) => e.reason().label(),
        };
        assert_eq!(verdict, expected, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= RejectReason::ALL.len(), "only {checked} seeds");
}

#[test]
fn cluster_id_zero_passes_only_where_unknown_clusters_are_accepted() {
    let frame = with_header(&ping_frame(b"x"), |h| h.cluster_id = 0);
    assert_eq!(
        rules().decode_datagram(&frame),
        Err(WireError::WrongCluster {
            expected: CLUSTER,
            got: 0
        })
    );
    let client_port = rules().accepting_unknown_cluster();
    assert!(client_port.decode_datagram(&frame).is_ok());
    let foreign = with_header(&ping_frame(b"x"), |h| h.cluster_id = 99);
    assert!(matches!(
        client_port.decode_datagram(&foreign),
        Err(WireError::WrongCluster { got: 99, .. })
    ));
}
