//! The steady-state send and receive path of tcp_uring allocates nothing: after a warm-up,
//! thousands of ping-pong round trips run under a counting global allocator that must stay at 0.

mod transport_support;

use aurora::transport::{Event, Remote, Transport};
use aurora::wire::{FrameKind, HEADER_LEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use transport_support::*;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One ping from `client` answered by a pong from `server`, polling both on this thread.
fn round_trip(
    client: &mut aurora::transport::tcp_uring::TcpUring,
    server: &mut aurora::transport::tcp_uring::TcpUring,
    events: &mut Vec<Event>,
    payload: &[u8],
) {
    let ping = frame(client, FrameKind::Ping, 1, 2, payload);
    client.send(Remote::Peer(2), ping).unwrap();
    let mut answered = false;
    for _ in 0..10_000_000 {
        server.poll(now_ns(), events).unwrap();
        for event in events.drain(..) {
            if let Event::Received { from, buf } = event {
                let mut pong = server.buffers().take().unwrap();
                assert!(pong.fill_from(buf.as_slice()));
                // Turn the ping into a pong addressed back: rewrite the header in place.
                let len = aurora::wire::encode_payload(
                    pong.slab_mut(),
                    &fields(FrameKind::Pong, 2, 1),
                    &buf.as_slice()[HEADER_LEN..],
                )
                .unwrap();
                pong.set_len(len);
                server.send(from, pong).unwrap();
            }
        }
        client.poll(now_ns(), events).unwrap();
        for event in events.drain(..) {
            if let Event::Received { buf, .. } = event {
                assert_eq!(&buf.as_slice()[HEADER_LEN..], payload);
                answered = true;
            }
        }
        if answered {
            return;
        }
    }
    panic!("round trip did not complete");
}

#[test]
fn steady_state_send_and_receive_allocate_nothing() {
    let mut server = acceptor(2, &[1]);
    let mut client = dialer(1, &[(2, server.local_addr().unwrap())]);
    let mut logs = Vec::new();
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| is_up(&l[0], 2) && is_up(&l[1], 1)
    ));
    let mut events = Vec::with_capacity(256);
    let small = [7u8; 64];
    let large = [9u8; 4096];
    for _ in 0..500 {
        round_trip(&mut client, &mut server, &mut events, &small);
        round_trip(&mut client, &mut server, &mut events, &large);
    }

    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..2_500 {
        round_trip(&mut client, &mut server, &mut events, &small);
        round_trip(&mut client, &mut server, &mut events, &large);
    }
    COUNTING.store(false, Ordering::SeqCst);

    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations in 5000 steady-state round trips"
    );
    assert_eq!(server.stats().frames_received, 6_000);
}
