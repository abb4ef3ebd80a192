//! Encoding, validating and counting rejected frames allocates nothing: a counting global allocator watches this
//! thread while it encodes and decodes thousands of frames, good and bad.

use aurora::metrics::{Registry, ShardMetrics};
use aurora::wire::{
    encode_into, FrameKind, FrameRules, HeaderFields, RejectMetrics, RejectReason, HEADER_LEN,
};

mod counting_alloc;
use counting_alloc::allocations_in;

#[test]
fn counting_allocator_sees_an_allocation() {
    let n = allocations_in(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(n, 1);
}

#[test]
fn encode_and_validate_do_not_allocate() {
    let rules = FrameRules::new(42, 4096).expect("below ceiling");
    let mut buf = [0u8; HEADER_LEN + 4096];
    let mut registry = Registry::new();
    let rejects = RejectMetrics::register(&mut registry).expect("valid names");
    let (mut metrics, _link) = ShardMetrics::new(&registry.finish());
    let mut payload_bytes = 0usize;
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            let fields = HeaderFields {
                kind: FrameKind::Ping,
                cluster_id: 42,
                from: 1,
                to: 2,
                term: i,
                correlation_id: i,
            };
            let payload_len = (i as usize * 37) % 4096;
            let len = encode_into(&mut buf, &fields, |room| {
                room[..payload_len].fill(i as u8);
                payload_len
            })
            .expect("fits");
            let frame = rules.validate_frame(&buf[..len]).expect("valid");
            payload_bytes += frame.payload().len();
            // The rejection path must not allocate either.
            buf[HEADER_LEN - 1] ^= 0xFF;
            match rules.decode_datagram(&buf[..len]) {
                Err(e) => rejects.record(&mut metrics, &e),
                Ok(_) => unreachable!("a corrupted correlation id passes the checksum"),
            }
        }
    });
    assert_eq!(n, 0, "encode/validate allocated {n} times");
    assert_eq!(
        metrics.counter(rejects.id(RejectReason::BadChecksum)),
        10_000
    );
    assert!(payload_bytes > 0);
}
