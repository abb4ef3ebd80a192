//! The client's failover logic against fake nodes that speak the real protocol over loopback and
//! answer from a real [`Store`]: redirects, re-sends that must apply once, silent nodes, timeouts.
//! (Real daemons are exercised by tests/cluster_*.rs.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::config::Durability;
use crate::server::protocol::{
    decode_request, frame_response_into, ClientResponse, NodeStatus, RequestOpView, ServerError,
};
use crate::store::{codec, ApplyOutput, Command, Reply, Store, StoreLimits};
use crate::wire::{FrameRules, HEADER_LEN};

const CLUSTER: u64 = 0xC11E;

#[derive(Clone)]
enum Mode {
    /// Serves the store.
    Leader,
    /// Answers every store request with NotLeader pointing at the address.
    Follower(SocketAddr),
    /// Applies writes but closes the connection instead of answering, this many times.
    DropAnswers(Arc<AtomicU64>),
    /// Reads requests and never answers.
    Silent,
}

struct FakeNode {
    addr: SocketAddr,
}

struct Shared {
    store: Store,
    index: u64,
    applied_writes: u64,
}

fn spawn_node(mode: Mode, shared: Arc<Mutex<Shared>>) -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (mode, shared) = (mode.clone(), Arc::clone(&shared));
            std::thread::spawn(move || serve(stream, mode, shared));
        }
    });
    FakeNode { addr }
}

fn shared() -> Arc<Mutex<Shared>> {
    Arc::new(Mutex::new(Shared {
        store: Store::new(StoreLimits::default()),
        index: 0,
        applied_writes: 0,
    }))
}

fn serve(mut stream: TcpStream, mode: Mode, shared: Arc<Mutex<Shared>>) {
    let rules = FrameRules::new(CLUSTER, 1 << 20).expect("rules");
    let mut buf = vec![0u8; 1 << 20];
    let mut out = vec![0u8; 1 << 20];
    loop {
        let mut header = [0u8; HEADER_LEN];
        if stream.read_exact(&mut header).is_err() {
            return;
        }
        let valid = rules
            .validate_header(&header)
            .expect("client frames are valid");
        let len = valid.frame_len_bytes();
        buf[..HEADER_LEN].copy_from_slice(&header);
        if stream.read_exact(&mut buf[HEADER_LEN..len]).is_err() {
            return;
        }
        let frame = rules.validate_frame(&buf[..len]).expect("valid frame");
        let correlation = frame.header().correlation_id();
        let request = decode_request(frame.payload()).expect("valid request");
        let response = match (&mode, request.op) {
            (Mode::Silent, _) => continue,
            (_, RequestOpView::Status) => ClientResponse::Status(NodeStatus {
                node_id: 1,
                role: NodeRole::Leader,
                term: 1,
                leader: 1,
                commit_index: 0,
                applied_index: 0,
                revision: 0,
                durability: Durability::Memory,
                leader_client_addr: String::new(),
            }),
            (Mode::Follower(leader), _) => ClientResponse::Error(ServerError::NotLeader {
                leader: 1,
                leader_client_addr: leader.to_string(),
            }),
            (Mode::Leader | Mode::DropAnswers(_), RequestOpView::Store { request, .. }) => {
                let decoded =
                    codec::decode_request(request, &StoreLimits::default()).expect("valid");
                let mut shared = shared.lock().expect("lock");
                let response = match decoded.command {
                    Command::Read(read) => shared.store.read(&read),
                    _ => {
                        shared.index += 1;
                        shared.applied_writes += 1;
                        let index = shared.index;
                        let mut output = ApplyOutput::default();
                        shared.store.apply(index, request, &mut output);
                        output.response.expect("a request entry answers").response
                    }
                };
                if let Mode::DropAnswers(left) = &mode {
                    if left.load(Ordering::SeqCst) > 0 {
                        left.fetch_sub(1, Ordering::SeqCst);
                        return; // the write applied; the answer is lost with the connection
                    }
                }
                let mut bytes = Vec::new();
                codec::encode_response(&response, &mut bytes);
                ClientResponse::Store(bytes)
            }
            (_, other) => panic!("fake node got {other:?}"),
        };
        let n =
            frame_response_into(&mut out, CLUSTER, correlation, response.as_ref()).expect("room");
        if stream.write_all(&out[..n]).is_err() {
            return;
        }
    }
}

fn options(endpoints: &[SocketAddr]) -> ClientOptions {
    let mut opts = ClientOptions::new(endpoints.to_vec());
    opts.cluster_id = CLUSTER;
    opts.request_timeout = Duration::from_secs(5);
    opts.attempt_timeout = Duration::from_millis(300);
    opts
}

#[test]
fn follows_not_leader_hints_to_the_leader() {
    let state = shared();
    let leader = spawn_node(Mode::Leader, Arc::clone(&state));
    let follower = spawn_node(Mode::Follower(leader.addr), Arc::clone(&state));
    // Only the follower is listed: the leader's address is learned from its answer.
    let mut client = Client::connect(options(&[follower.addr])).expect("connect");
    let revision = client.put(b"k", b"v").expect("put");
    assert!(revision >= 1);
    assert_eq!(client.get(b"k").expect("get").expect("exists").value, b"v");
    assert_eq!(client.connected_to(), Some(leader.addr));
}

#[test]
fn a_write_whose_answer_was_lost_applies_once() {
    let state = shared();
    let drops = Arc::new(AtomicU64::new(0));
    let flaky = spawn_node(Mode::DropAnswers(Arc::clone(&drops)), Arc::clone(&state));
    let leader = spawn_node(Mode::Leader, Arc::clone(&state));
    let mut client = Client::connect(options(&[flaky.addr, leader.addr])).expect("connect");
    client
        .fetch_add(b"c", 1)
        .expect("registers the session first");
    let writes_before = state.lock().expect("lock").applied_writes;
    // The next write is applied on the flaky node, whose connection then breaks; the client
    // re-sends it (same session sequence number) to the other node, which answers from the
    // session cache instead of adding again.
    drops.store(1, Ordering::SeqCst);
    let previous = client.fetch_add(b"c", 10).expect("retried fetch-add");
    assert_eq!(previous, 1, "the answer is the first application's");
    assert_eq!(
        client.counter(b"c").expect("read"),
        11,
        "added once, not twice"
    );
    let writes_after = state.lock().expect("lock").applied_writes;
    assert_eq!(
        writes_after - writes_before,
        2,
        "the re-send reached the log"
    );
}

#[test]
fn a_silent_node_is_abandoned_for_a_live_one() {
    let state = shared();
    let silent = spawn_node(Mode::Silent, Arc::clone(&state));
    let leader = spawn_node(Mode::Leader, Arc::clone(&state));
    let mut client = Client::connect(options(&[silent.addr, leader.addr])).expect("connect");
    client.put(b"k", b"v").expect("put reaches the live node");
    assert_eq!(client.connected_to(), Some(leader.addr));
}

#[test]
fn requests_time_out_with_the_last_problem_named() {
    let state = shared();
    let silent = spawn_node(Mode::Silent, state);
    let mut opts = options(&[silent.addr]);
    opts.request_timeout = Duration::from_millis(800);
    let mut client = Client::connect(opts).expect("connect");
    let started = Instant::now();
    let err = client.get(b"k").expect_err("nobody answers");
    assert!(started.elapsed() < Duration::from_secs(5), "bounded wait");
    let text = err.to_string();
    assert!(matches!(err, ClientError::Timeout { .. }), "{text}");
    assert!(text.contains("did not answer"), "{text}");
}

#[test]
fn unreachable_endpoints_fail_at_connect() {
    let free = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let err = Client::connect(options(&[addr]))
        .err()
        .expect("nothing listens");
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("aurora up"), "{err}");
}

#[test]
fn pipelined_requests_all_complete() {
    let state = shared();
    let leader = spawn_node(Mode::Leader, state);
    let mut client = Client::connect(options(&[leader.addr])).expect("connect");
    let tickets: Vec<Ticket> = (0..50)
        .map(|i| {
            client
                .submit(Command::FetchAdd {
                    name: b"n".to_vec(),
                    delta: i,
                })
                .expect("submit")
        })
        .collect();
    let mut previous = Vec::new();
    while let Some((ticket, result)) = client.wait_any().expect("wait") {
        assert!(tickets.contains(&ticket));
        match result.expect("fetch-add") {
            (_, Reply::FetchAdd { previous: p }) => previous.push(p),
            (_, other) => panic!("{other:?}"),
        }
    }
    assert_eq!(previous.len(), 50);
    assert_eq!(client.counter(b"n").expect("read"), (0..50).sum::<i64>());
}

#[test]
fn probes_sent_while_a_request_waits_never_surface_as_results() {
    let state = shared();
    let leader = spawn_node(Mode::Leader, Arc::clone(&state));
    let mut client = Client::connect(options(&[leader.addr])).expect("connect");
    let holder_lease = client.lease_grant(60_000).expect("lease");
    let token = client
        .lock(b"L", holder_lease, Duration::from_secs(1))
        .expect("granted");
    // A second session queues behind the holder: its request is "waiting", the node then stays
    // silent (this fake never sends completions). The client must keep probing the node rather
    // than trust the silence, and the probes must not surface as results.
    let mut waiter = Client::connect(options(&[leader.addr])).expect("connect");
    let lease = waiter.lease_grant(60_000).expect("lease");
    let started = Instant::now();
    let err = waiter
        .lock(b"L", lease, Duration::from_millis(1500))
        .expect_err("never granted");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(waiter.in_flight(), 0, "probes are not results");
    assert!(token > 0);
}

#[test]
fn a_closed_session_is_replaced_by_a_new_one_on_the_next_write() {
    let state = shared();
    let leader = spawn_node(Mode::Leader, state);
    let mut client = Client::connect(options(&[leader.addr])).expect("connect");
    client.close_session().expect("nothing to close");
    client.put(b"k", b"v").expect("put");
    let first = client.client_id().expect("a write opened a session");
    client.close_session().expect("close");
    assert_eq!(client.client_id(), None);
    client.put(b"k", b"w").expect("put in a new session");
    assert_ne!(
        client.client_id(),
        Some(first),
        "session ids are never reused"
    );
}
