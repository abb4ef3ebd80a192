//! An idle connection learns that its peer is unreachable from its keepalive. Without probes an RC
//! queue pair that sends nothing never notices a partition (two followers exchange nothing), and
//! the side that would redial waits forever while the other waits for the redial.
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::rdma::RdmaTransport;
use rdma_support::*;

#[test]
fn an_idle_connection_is_reported_down_by_its_keepalive_and_redialed_after_the_partition() {
    let netdev = guest("AURORA_RDMA_NETDEV0");
    let mut b = RdmaTransport::new(node(2, 1, &[], &[1])).unwrap();
    let mut cfg = node(1, 0, &[(2, addr_of(&b))], &[]);
    cfg.keepalive_ms = 100;
    let mut a = RdmaTransport::new(cfg).unwrap();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);
    // Neither side sends a frame of its own from here on.
    let partition = Partition::new(&netdev);
    pump(
        &mut [&mut a, &mut b],
        "the idle dialer's keepalive finds peer 2 unreachable",
        |i, e| i == 0 && is_down(&e, 2),
    );
    partition.heal();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);
}
