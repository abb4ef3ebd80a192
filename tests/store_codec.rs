//! Fuzz-like property tests of the store codec, which is both the client protocol payload and the
//! log format: arbitrary or damaged bytes never panic a decoder or the store, and whatever decodes
//! re-encodes to exactly the same bytes (the encoding is canonical).

mod store_common;

use aurora::store::{codec, ApplyOutput, Request, Store, StoreLimits};
use proptest::prelude::*;
use store_common::{entry, step, tight_limits, Action, Client, Step};

/// Decodes `bytes` as each kind of message; any success must re-encode to the same bytes.
fn decode_all(bytes: &[u8], limits: &StoreLimits) -> Result<(), TestCaseError> {
    if let Ok(request) = codec::decode_request(bytes, limits) {
        let mut again = Vec::new();
        codec::encode_request(&request, &mut again);
        prop_assert_eq!(&again, bytes);
    }
    if let Ok(response) = codec::decode_response(bytes) {
        let mut again = Vec::new();
        codec::encode_response(&response, &mut again);
        prop_assert_eq!(&again, bytes);
    }
    if let Ok(events) = codec::decode_events(bytes) {
        let mut again = Vec::new();
        codec::encode_events(&events, &mut again);
        prop_assert_eq!(&again, bytes);
    }
    Ok(())
}

/// Realistic messages: the requests a client makes for `steps` and the responses and events a
/// store gives them.
fn messages(steps: &[Step]) -> Vec<Vec<u8>> {
    let limits = tight_limits(u64::MAX);
    let mut store = Store::new(limits);
    let mut client = Client::new(limits);
    let mut out = ApplyOutput::default();
    let mut all = Vec::new();
    for (index, step) in (1..).zip(steps) {
        let Action::Apply(request) = client.action(step) else {
            continue;
        };
        let bytes = entry(&request);
        store.apply(index, &bytes, &mut out);
        let response = out.response.clone().expect("valid request").response;
        client.observe(&response, &out.notifications, &request);
        all.push(bytes);
        let mut encoded = Vec::new();
        codec::encode_response(&response, &mut encoded);
        all.push(encoded);
        let mut encoded = Vec::new();
        codec::encode_events(&out.events, &mut encoded);
        all.push(encoded);
    }
    all
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        any::<usize>().prop_map(|at| Damage::Remove { at }),
    ]
}

fn apply_damage(bytes: &mut Vec<u8>, damage: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match *damage {
        Damage::Flip { at, mask } => {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        Damage::Truncate { at } => bytes.truncate(at % bytes.len()),
        Damage::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Damage::Remove { at } => {
            bytes.remove(at % bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_all(&bytes, &StoreLimits::default())?;
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(kind in prop::sample::select(vec![b'Q', b'R', b'W']), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![codec::VERSION, kind];
        bytes.extend(body);
        decode_all(&bytes, &StoreLimits::default())?;
    }

    #[test]
    fn damaged_messages_never_panic_a_decoder_or_the_store(
        steps in prop::collection::vec(step(), 1..40),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let limits = tight_limits(u64::MAX);
        let mut store = Store::new(limits);
        let mut out = ApplyOutput::default();
        for (index, message) in (1..).zip(messages(&steps)) {
            decode_all(&message, &limits)?;
            let mut damaged = message.clone();
            for d in &damages {
                apply_damage(&mut damaged, d);
            }
            decode_all(&damaged, &limits)?;
            store.apply(index, &damaged, &mut out);
            prop_assert_eq!(out.response.is_some() || damaged.is_empty(), out.rejected.is_none());
            prop_assert_eq!(store.verify(), Ok(()));
        }
    }

    #[test]
    fn every_generated_request_round_trips(steps in prop::collection::vec(step(), 1..60)) {
        let limits = tight_limits(u64::MAX);
        let mut client = Client::new(limits);
        for step in &steps {
            if let Action::Apply(request) = client.action(step) {
                let bytes = entry(&request);
                let decoded: Request = codec::decode_request(&bytes, &limits).expect("valid");
                prop_assert_eq!(decoded, request);
            }
        }
    }
}
