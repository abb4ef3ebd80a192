//! Feeds arbitrary bytes to both frame decoding paths.
//!
//! Properties: nothing panics; the two-phase stream path and the one-shot datagram path agree; a
//! header error found by phase 1 is the error phase 2 reports; and every frame that decodes
//! re-encodes from its fields and payload to exactly the bytes it came from (so a decode can never
//! accept something the encoder would write differently).
#![no_main]

use aurora::wire::{encode_payload, FrameRules, WireError, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// Cluster id and payload limit the seed corpus (`fuzz/corpus_seed/`) is written for.
const CLUSTER: u64 = 0xA0A0_0001;
const MAX_PAYLOAD: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    let rules = FrameRules::new(CLUSTER, MAX_PAYLOAD).expect("4096 is below the ceiling");
    let mut scratch = [0u8; HEADER_LEN + MAX_PAYLOAD as usize];

    let datagram = rules.decode_datagram(data);
    if let Ok(frame) = datagram {
        assert_eq!(frame.bytes(), data);
        assert_reencodes(&mut scratch, &frame);
    }

    // The stream path: consume back-to-back frames until the rest is incomplete or invalid. Each
    // frame is at least HEADER_LEN bytes, so this ends within data.len() / HEADER_LEN rounds.
    let mut rest = data;
    let mut frames = 0usize;
    loop {
        let header = rules.validate_header(rest);
        let frame = rules.validate_frame(rest);
        match (header, frame) {
            (Ok(header), Ok(frame)) => {
                assert_eq!(*frame.header(), header);
                assert_eq!(frame.len_bytes(), header.frame_len_bytes());
                assert_reencodes(&mut scratch, &frame);
                if frames == 0 {
                    // The datagram path accepts exactly the single-frame inputs of the stream path.
                    match datagram {
                        Ok(d) => assert_eq!(d, frame),
                        Err(e) => assert_eq!(
                            e,
                            WireError::TrailingBytes {
                                frame_len: frame.len_bytes(),
                                have: data.len()
                            }
                        ),
                    }
                }
                frames += 1;
                rest = &rest[frame.len_bytes()..];
            }
            (Ok(header), Err(e)) => {
                assert!(
                    matches!(
                        e,
                        WireError::BadChecksum { .. } | WireError::Truncated { .. }
                    ),
                    "a valid header can only fail on its payload: {e:?}"
                );
                if let WireError::Truncated { need, have } = e {
                    assert_eq!(need, header.frame_len_bytes());
                    assert!(have < need);
                }
                break;
            }
            (Err(header_error), frame) => {
                assert_eq!(frame, Err(header_error));
                assert!(!header_error.reason().label().is_empty());
                assert!(!header_error.to_string().is_empty());
                break;
            }
        }
    }
    assert!(frames <= data.len() / HEADER_LEN);
});

fn assert_reencodes(scratch: &mut [u8], frame: &aurora::wire::Frame<'_>) {
    let len = encode_payload(scratch, &frame.header().fields(), frame.payload())
        .expect("a decoded payload is within the limit and fits the scratch buffer");
    assert_eq!(&scratch[..len], frame.bytes());
}
