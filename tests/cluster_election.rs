//! The rest of the client's store operations against a real cluster: elections (campaign,
//! leader, proclaim, a queued candidate taking over on resign), lease listing and TTL, compaction
//! and reads at a past revision, and pipelined writes through `submit`/`wait_any`.

mod local_cluster;

use std::time::Duration;

use aurora::cli::up::DurabilityArg;
use aurora::client::{ClientError, Consistency};
use aurora::store::{Command, KeyRange, PutRequest, RangeRequest, Reply, StoreError};
use local_cluster::LocalCluster;

#[test]
fn elections_leases_compaction_and_pipelining_work_end_to_end() {
    let cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let mut a = cluster.client();
    let mut b = cluster.client();

    // Elections: a wins, proclaims; b queues and takes over when a resigns.
    let lease_a = a.lease_grant(30_000).expect("lease a");
    let lease_b = b.lease_grant(30_000).expect("lease b");
    let token_a = a
        .campaign(b"chief", lease_a, b"node-a", Duration::from_secs(5))
        .expect("a wins");
    assert_eq!(a.leader(b"chief").expect("leader").value, b"node-a");
    a.proclaim(b"chief", token_a, b"node-a v2")
        .expect("proclaim");
    assert_eq!(b.leader(b"chief").expect("leader").value, b"node-a v2");
    let opts = cluster.options();
    let candidate = std::thread::spawn(move || {
        let mut c = aurora::client::Client::connect(opts).expect("connect");
        let lease = c.lease_grant(30_000).expect("lease c");
        c.campaign(b"chief", lease, b"node-c", Duration::from_secs(30))
    });
    std::thread::sleep(Duration::from_millis(300));
    a.resign(b"chief", token_a).expect("resign");
    let token_c = candidate
        .join()
        .expect("thread")
        .expect("c wins after a resigns");
    assert!(token_c > token_a);
    assert_eq!(b.leader(b"chief").expect("leader").value, b"node-c");
    let stale = a
        .proclaim(b"chief", token_a, b"late")
        .expect_err("a no longer leads");
    assert!(
        matches!(stale, ClientError::Store(StoreError::NotHolder { .. })),
        "{stale}"
    );

    // Leases: listed, TTL and keys, revocation deletes the keys.
    let mut put = PutRequest::new(&b"owned"[..], &b"x"[..]);
    put.lease = lease_b;
    b.put_request(put).expect("put with lease");
    assert!(b.leases().expect("list").iter().any(|l| l.id == lease_b));
    let (ttl, keys) = b.lease_time_to_live(lease_b, true).expect("ttl");
    assert_eq!((ttl, keys), (30_000, vec![b"owned".to_vec()]));
    assert_eq!(b.lease_keep_alive(lease_b).expect("keep alive"), 30_000);
    assert_eq!(b.lease_revoke(lease_b).expect("revoke"), 1);
    assert!(b.get(b"owned").expect("get").is_none());

    // History: read at a past revision, then compact it away.
    let first = a.put(b"hist", b"1").expect("put 1");
    a.put(b"hist", b"2").expect("put 2");
    let mut old = RangeRequest::latest(KeyRange::single(&b"hist"[..]));
    old.revision = first;
    assert_eq!(a.range(old.clone()).expect("old read").1.kvs[0].value, b"1");
    let latest = a.put(b"hist", b"3").expect("put 3");
    a.compact(latest).expect("compact");
    let err = a.range(old).expect_err("compacted");
    assert!(
        matches!(err, ClientError::Store(StoreError::Compacted { .. })),
        "{err}"
    );

    // Pipelining: 200 fetch-adds in flight at once, each applied once.
    let tickets: Vec<_> = (0..200)
        .map(|_| {
            a.submit(Command::FetchAdd {
                name: b"pipelined".to_vec(),
                delta: 1,
            })
            .expect("submit")
        })
        .collect();
    let mut previous = Vec::new();
    while let Some((ticket, result)) = a.wait_any().expect("wait") {
        assert!(tickets.contains(&ticket));
        match result.expect("fetch-add") {
            (_, Reply::FetchAdd { previous: p }) => previous.push(p),
            (_, other) => panic!("{other:?}"),
        }
    }
    previous.sort_unstable();
    assert_eq!(
        previous,
        (0..200).collect::<Vec<i64>>(),
        "each applied once"
    );

    // Stale reads are served by whichever node answers.
    let mut opts = cluster.options();
    opts.consistency = Consistency::Stale;
    let mut stale_reader = aurora::client::Client::connect(opts).expect("connect");
    let counter = stale_reader.counter(b"pipelined").expect("stale counter");
    assert!((0..=200).contains(&counter));
}
