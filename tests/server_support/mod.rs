//! Shared by the server tests: in-process clusters on loopback and a small blocking client that
//! speaks docs/PROTOCOL.md directly (the real client library is src/client).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use aurora::config::Config;
use aurora::server::protocol::{
    decode_response, frame_request, ClientRequest, ClientResponse, Consistency, NodeStatus,
    RequestOp, ServerError,
};
use aurora::server::{start, RunningServer};
use aurora::store::{
    codec, Command, KeyRange, PutRequest, RangeRequest, ReadRequest, Reply, Request, Response,
    SessionHeader,
};
use aurora::wire::{FrameRules, HEADER_LEN};

pub const CLUSTER: u64 = 0xA0A0;
pub const SECRET: &str = "test-only-secret-0123456789abcdef-xyz";

/// A free loopback port (bound, then released; tests run in their own process).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Ports of one node: peer, client, admin.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub peer: u16,
    pub client: u16,
    pub admin: u16,
}

pub fn ports(n: usize) -> Vec<Ports> {
    (0..n)
        .map(|_| Ports {
            peer: free_port(),
            client: free_port(),
            admin: free_port(),
        })
        .collect()
}

/// The TOML of node `id` (1-based) of a cluster with `ports`.
pub fn config_toml(id: usize, ports: &[Ports], data_dir: &Path, durability: &str) -> String {
    let mut toml = format!(
        "cluster_id = {CLUSTER}\nnode_id = {id}\nsecret = \"{SECRET}\"\ndata_dir = \"{}\"\n\
         durability = \"{durability}\"\nallow_single_node_memory = true\n",
        data_dir.display()
    );
    for (i, p) in ports.iter().enumerate() {
        toml.push_str(&format!(
            "[[members]]\nid = {}\npeer_addr = \"127.0.0.1:{}\"\nclient_addr = \"127.0.0.1:{}\"\n\
             admin_addr = \"127.0.0.1:{}\"\n",
            i + 1,
            p.peer,
            p.client,
            p.admin
        ));
    }
    toml.push_str(
        "[timing]\nheartbeat_interval_ms = 10\nelection_timeout_min_ms = 100\n\
         election_timeout_max_ms = 200\nrequest_timeout_ms = 2000\nreconnect_backoff_ms = 10\n\
         [limits]\nmax_value_bytes = 65536\nmax_frame_bytes = 131072\n",
    );
    // Benchmarks may let idle nodes spin before they park.
    let spin_us: u64 = std::env::var("AURORA_BENCH_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    toml.push_str(&format!("[runtime]\nspin_us = {spin_us}\n"));
    toml
}

pub fn config(id: usize, ports: &[Ports], dir: &Path, durability: &str) -> Config {
    let data_dir = dir.join(format!("n{id}"));
    std::fs::create_dir_all(&data_dir).expect("create data dir");
    let path = dir.join(format!("n{id}.toml"));
    std::fs::write(&path, config_toml(id, ports, &data_dir, durability)).expect("write config");
    aurora::config::load(&path, Vec::new(), Vec::new()).unwrap_or_else(|e| panic!("config: {e}"))
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ports: Vec<Ports>,
    pub nodes: Vec<Option<RunningServer>>,
    pub durability: &'static str,
}

impl Cluster {
    pub fn start(n: usize, durability: &'static str) -> Self {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = ports(n);
        let mut cluster = Self {
            dir,
            ports,
            nodes: (0..n).map(|_| None).collect(),
            durability,
        };
        for id in 1..=n {
            cluster.restart(id);
        }
        cluster
    }

    /// Starts node `id` on its ports. A freed port can be taken meanwhile as the source port of
    /// an outgoing connection of a concurrent test, so a failed bind is retried for a while.
    pub fn restart(&mut self, id: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let config = config(id, &self.ports, self.dir.path(), self.durability);
            match start(config) {
                Ok(node) => {
                    self.nodes[id - 1] = Some(node);
                    return;
                }
                Err(e) if Instant::now() < until => {
                    eprintln!("node {id} did not start ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("node {id}: {e}"),
            }
        }
    }

    pub fn stop(&mut self, id: usize) {
        if let Some(node) = self.nodes[id - 1].take() {
            node.shutdown().expect("clean shutdown");
        }
    }

    pub fn client_addr(&self, id: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[id - 1].client))
    }

    /// Waits until a running node reports itself leader; returns its id.
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            for id in 1..=self.nodes.len() {
                if self.nodes[id - 1].is_none() {
                    continue;
                }
                if let Ok(mut c) = Client::connect(self.client_addr(id)) {
                    if let Ok(s) = c.status() {
                        if s.leader as usize == id
                            && s.role == aurora::server::protocol::NodeRole::Leader
                        {
                            return id;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no leader within {timeout:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(n) = node.take() {
                let _ = n.shutdown();
            }
        }
    }
}

/// A blocking client for tests.
pub struct Client {
    pub stream: TcpStream,
    next_corr: u64,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Self {
            stream,
            next_corr: 1,
        })
    }

    pub fn send(&mut self, op: RequestOp) -> std::io::Result<u64> {
        let corr = self.next_corr;
        self.next_corr += 1;
        let mut frame = Vec::new();
        frame_request(
            CLUSTER,
            corr,
            &ClientRequest { deadline_ms: 0, op },
            &mut frame,
        )
        .expect("frame fits");
        self.stream.write_all(&frame)?;
        Ok(corr)
    }

    /// Reads one response frame: (correlation id, response).
    pub fn recv(&mut self) -> std::io::Result<(u64, ClientResponse)> {
        let mut header = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut header)?;
        let rules = FrameRules::new(CLUSTER, 16 << 20).expect("rules");
        let h = rules
            .validate_header(&header)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut frame = header.to_vec();
        frame.resize(h.frame_len_bytes(), 0);
        self.stream.read_exact(&mut frame[HEADER_LEN..])?;
        let f = rules
            .validate_frame(&frame)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let response =
            decode_response(f.payload()).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok((f.header().correlation_id(), response))
    }

    pub fn call(&mut self, op: RequestOp) -> std::io::Result<ClientResponse> {
        let corr = self.send(op)?;
        let (got, response) = self.recv()?;
        assert_eq!(got, corr, "answers come back for the request sent");
        Ok(response)
    }

    pub fn status(&mut self) -> std::io::Result<NodeStatus> {
        match self.call(RequestOp::Status)? {
            ClientResponse::Status(s) => Ok(s),
            other => Err(std::io::Error::other(format!("unexpected {other:?}"))),
        }
    }

    pub fn store(
        &mut self,
        request: &Request,
        consistency: Consistency,
    ) -> std::io::Result<Result<Response, ServerError>> {
        let mut bytes = Vec::new();
        codec::encode_request(request, &mut bytes);
        match self.call(RequestOp::Store {
            consistency,
            request: bytes,
        })? {
            ClientResponse::Store(b) => Ok(Ok(
                codec::decode_response(&b).expect("store response decodes")
            )),
            ClientResponse::Error(e) => Ok(Err(e)),
            other => Err(std::io::Error::other(format!("unexpected {other:?}"))),
        }
    }

    pub fn put(
        &mut self,
        key: &str,
        value: &[u8],
    ) -> std::io::Result<Result<Response, ServerError>> {
        self.store(
            &Request {
                session: SessionHeader::none(1),
                command: Command::Put(PutRequest::new(key, value.to_vec())),
            },
            Consistency::Linearizable,
        )
    }

    /// The value of `key` (None if absent).
    pub fn get(
        &mut self,
        key: &str,
        consistency: Consistency,
    ) -> std::io::Result<Result<Option<Vec<u8>>, ServerError>> {
        let r = self.store(
            &Request {
                session: SessionHeader::none(1),
                command: Command::Read(ReadRequest::Range(RangeRequest::latest(KeyRange::single(
                    key,
                )))),
            },
            consistency,
        )?;
        Ok(r.map(|resp| match resp.result {
            Ok(Reply::Range(range)) => range.kvs.into_iter().next().map(|kv| kv.value),
            other => panic!("unexpected read result {other:?}"),
        }))
    }
}

/// Puts through whichever node leads, following NotLeader; retries NoLeader for up to `timeout`.
pub fn put_anywhere(cluster: &Cluster, key: &str, value: &[u8], timeout: Duration) -> Response {
    let until = Instant::now() + timeout;
    let mut target = cluster
        .nodes
        .iter()
        .position(Option::is_some)
        .expect("a node runs")
        + 1;
    loop {
        assert!(
            Instant::now() < until,
            "put {key} did not succeed within {timeout:?}"
        );
        let Ok(mut c) = Client::connect(cluster.client_addr(target)) else {
            target = target % cluster.nodes.len() + 1;
            continue;
        };
        match c.put(key, value) {
            Ok(Ok(resp)) => return resp,
            Ok(Err(ServerError::NotLeader { leader, .. })) => target = leader as usize,
            Ok(Err(_)) | Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                target = target % cluster.nodes.len() + 1;
                while cluster.nodes[target - 1].is_none() {
                    target = target % cluster.nodes.len() + 1;
                }
            }
        }
    }
}

/// GET `path` from the admin port: (status code, body). A test helper, not an HTTP client.
pub fn admin_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("admin response");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Polls `/metrics` until it contains `needle` (counters are published every few milliseconds).
pub fn wait_metric(port: u16, needle: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = admin_get(port, "/metrics").1;
        if metrics.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < until,
            "metrics never showed {needle}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
