//! A client that knows only endpoint addresses (cluster id 0) learns the cluster id from the first
//! answer; a client naming another cluster is still refused.

mod server_support;

use std::time::Duration;

use aurora::client::{Client, ClientOptions};
use server_support::{Cluster, CLUSTER};

#[test]
fn a_client_without_the_cluster_id_learns_it_and_a_foreign_id_is_refused() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let endpoints = vec![cluster.client_addr(leader)];

    let mut client = Client::connect(ClientOptions::new(endpoints.clone())).expect("connect");
    client.put(b"k", b"v").expect("put with cluster id 0");
    assert_eq!(client.cluster_id(), CLUSTER);
    assert_eq!(client.get(b"k").expect("get").expect("present").value, b"v");

    let mut opts = ClientOptions::new(endpoints);
    opts.cluster_id = CLUSTER ^ 0xff;
    opts.request_timeout = Duration::from_millis(1500);
    let foreign = Client::connect(opts).and_then(|mut c| c.put(b"k", b"w"));
    assert!(foreign.is_err(), "a foreign cluster id must be refused");
}
