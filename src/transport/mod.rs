//! Fabrics behind one completion-based trait (DESIGN.md §4).
//!
//! Every fast fabric Aurora runs on is completion-based: the caller *posts* work and later *polls*
//! for what finished. [`Transport`] is exactly that shape, so io_uring, RDMA verbs and DPDK all fit
//! it without an adapter thread or a readiness loop:
//!
//! - [`Transport::buffers`]: the shard's [`BufferPool`], one contiguous region registered with the
//!   fabric once. Messages are encoded straight into a pool [`Buf`].
//! - [`Transport::send`]: posts a buffer to a remote, taking ownership (no copy). The buffer comes
//!   back to the pool when the fabric is done with it; [`Event::SendComplete`] reports that.
//! - [`Transport::poll`]: reaps completions into a caller-owned, reused `Vec<Event>`, never growing
//!   it (at most `capacity - len` events per call), so the hot path does not allocate.
//! - [`Transport::park`]: sleep in the kernel until something completes or the timeout passes,
//!   for fabrics that can (io_uring); user-space fabrics return at once.
//!
//! Implementations here: [`mem`] (in-process, deterministic, for the simulator) and [`tcp_uring`]
//! (TCP on io_uring, the default). [`handshake`] is the peer authentication both kernel transports
//! share; [`bench`](mod@bench) is the ping-pong benchmark behind `aurora bench transport`.
//!
//! Remotes are [`Remote::Peer`] (a cluster node, authenticated with the cluster secret) or
//! [`Remote::Conn`] (an accepted connection that is not a peer, e.g. a client; that protocol is a
//! later issue, the id space is here so the trait does not change for it).
//!
//! # RDMA RC queue pair (feature `rdma`, a later issue) on this trait
//!
//! | trait                    | verbs                                                               |
//! |--------------------------|---------------------------------------------------------------------|
//! | `BufferPool::region()`   | `ibv_reg_mr(pd, ptr, len, LOCAL_WRITE \| REMOTE_WRITE)` once; every slab is addressed as `lkey` + `region_offset()` |
//! | receive side             | at connect, post `ibv_post_recv` work requests whose SGEs are pool slabs (one slab per WR); the QP's receive queue *is* the set of slabs lent to the NIC |
//! | `send(peer, buf)`        | `ibv_post_send` IBV_WR_SEND with one SGE over the slab, `wr_id` = slab index; the `Buf` is parked in a per-QP table until its completion |
//! | `poll(now, events)`      | `ibv_poll_cq` on the send and receive CQs: a recv WC becomes `Received { from, buf }` (the slab with `byte_len`), and a fresh slab is re-posted; a send WC drops the parked `Buf` and yields `SendComplete` |
//! | `PeerUp`                 | `rdma_cm` ESTABLISHED after the same HMAC handshake carried in the first SEND/RECV pair |
//! | `PeerDown { reason }`    | a WC with an error status (QP moved to ERROR, e.g. `IBV_WC_RETRY_EXC_ERR`) or `RDMA_CM_EVENT_DISCONNECTED`: the QP is torn down, its slabs return to the pool |
//! | `park(timeout)`          | `ibv_req_notify_cq` + poll on the completion channel fd with a timeout |
//! | backpressure             | send queue depth = `max_send_wr`; a full SQ is `SendErrorKind::QueueFull` |
//!
//! The one-sided log ring of DESIGN.md §2.5 (RDMA WRITE into a follower's registered ring) is a
//! second, narrower interface beside this trait; two-sided SEND/RECV stays on it.
//!
//! # DPDK port (feature `dpdk`, [`dpdk`]) on this trait
//!
//! | trait                    | DPDK                                                                |
//! |--------------------------|---------------------------------------------------------------------|
//! | `BufferPool::region()`   | built: a regular mempool per port and one copy into the mbuf each way (small frames copy cheaper than they pin; the slab stays in the window for retransmission). Not built: `rte_extmem_register` + `rte_pktmbuf_pool_create_extbuf` over the slabs |
//! | `send(peer, buf)`        | Ethernet/IPv4/UDP + a reliability header written into an mbuf, the frame copied behind them (segmented when longer than a datagram); `rte_eth_tx_burst` once per poll with everything queued (batching) |
//! | `poll(now, events)`      | `rte_eth_rx_burst`; each datagram passes the eRPC-style reliability layer *below* the trait (per-peer sequence numbers, acks, retransmission on a timer driven by `now_ns`); in-order payloads become `Received`; a frame acked by the peer frees its slab and yields `SendComplete` |
//! | `PeerUp` / `PeerDown`    | the handshake datagrams succeed / retransmissions to a peer exceed their bound |
//! | `park(timeout)`          | sleeps `timeout` (poll-mode drivers raise no interrupt): adaptive polling frees the core at the cost of latency |
//!
//! Both keep the contract the trait's users rely on, as `tcp_uring` does: in-order, exactly-once
//! delivery per remote while the remote is up; after `PeerDown` nothing more from that connection;
//! buffers always come back to the pool. `mem` keeps it too unless its owner injects loss,
//! duplication or reordering — which is what the simulator uses it for.

pub mod bench;
pub mod dpdk;
mod events;
pub mod handshake;
pub mod mem;
mod pool;
#[cfg(feature = "rdma")]
pub mod rdma;
mod stats;
pub mod tcp_uring;

pub use events::{DownReason, Event, Remote, SendError, SendErrorKind, TransportError};
pub use pool::{
    Buf, BufferPool, PageKind, PoolError, MAX_REGION_BYTES, MAX_SLAB_BYTES, MIN_SLAB_BYTES,
};
pub use stats::{RejectReason, TransportStats};

/// A cluster node as the transport sees it.
pub type PeerId = crate::config::NodeId;

/// An accepted connection that is not a cluster peer (a client). Ids are never reused by one
/// transport instance, so a late event cannot be confused with a newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A completion-based fabric. See the module docs for how RDMA and DPDK map onto it.
pub trait Transport {
    /// The registered buffer pool: take a [`Buf`] from it, encode a frame into it, [`send`](Self::send) it.
    fn buffers(&self) -> &BufferPool;

    /// Posts `buf` (a complete frame from this transport's pool) to `to`, taking ownership.
    ///
    /// Never blocks. On error the buffer is handed back inside the [`SendError`] so the caller can
    /// retry later (a full queue is backpressure, not loss).
    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError>;

    /// Reaps completions, appending at most `events.capacity() - events.len()` of them (the vector
    /// never grows, so a reused vector makes this allocation-free). Returns how many were appended.
    /// `now_ns` is the loop's one clock read; deadlines (handshakes, partial frames, reconnect
    /// backoff) are judged against it.
    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError>;

    /// Sleeps until a completion may be ready or `timeout_ns` passes. User-space fabrics return at
    /// once (the default).
    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        let _ = timeout_ns;
        Ok(())
    }

    /// Counters, including rejected connections by reason.
    fn stats(&self) -> &TransportStats;
}
