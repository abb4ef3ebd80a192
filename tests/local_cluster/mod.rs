//! A real local cluster for integration tests: `aurora serve` processes on loopback, laid out and
//! started exactly as `aurora up` does ([`aurora::cli::up`]), with free ports and a temporary data
//! directory. Nodes can be killed (SIGKILL), stopped (SIGSTOP) and restarted; everything is
//! killed when the cluster is dropped, and a failing test prints the node logs.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use aurora::cli::up::{self, DurabilityArg, Layout, LOCAL_CLUSTER_ID};
use aurora::client::{Client, ClientOptions, NodeRole, NodeStatus};
use aurora::config::NodeId;

/// Longest a test waits for a leader (elections take 300–600 ms; CI machines are slow).
pub const LEADER_WAIT: Duration = Duration::from_secs(20);

pub fn aurora_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aurora"))
}

pub struct LocalCluster {
    pub layout: Layout,
    children: Vec<(NodeId, Option<Child>)>,
    set: Vec<String>,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts `nodes` voters and waits until one of them leads.
    pub fn start(nodes: u8, durability: DurabilityArg) -> Self {
        Self::start_with(nodes, durability, &[])
    }

    /// Like [`LocalCluster::start`], with `--set KEY=VALUE` overrides for every node.
    pub fn start_with(nodes: u8, durability: DurabilityArg, set: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::create(dir.path(), nodes, durability, 0).expect("layout");
        let mut cluster = Self {
            children: layout.nodes.iter().map(|n| (n.id, None)).collect(),
            layout,
            set: set.iter().map(|s| (*s).to_owned()).collect(),
            dir,
        };
        for id in cluster.ids() {
            cluster.start_node(id);
        }
        cluster.wait_for_leader(LEADER_WAIT);
        cluster
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.layout.nodes.iter().map(|n| n.id).collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every node's client address, comma-separated (for `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.layout.client_endpoints()
    }

    pub fn client_addr(&self, id: NodeId) -> SocketAddr {
        self.layout.node(id).client
    }

    /// Client options for this cluster with test-friendly timeouts.
    pub fn options(&self) -> ClientOptions {
        let mut opts = ClientOptions::new(self.layout.nodes.iter().map(|n| n.client).collect());
        opts.cluster_id = LOCAL_CLUSTER_ID;
        opts.request_timeout = Duration::from_secs(10);
        opts.attempt_timeout = Duration::from_secs(1);
        opts
    }

    pub fn client(&self) -> Client {
        Client::connect(self.options()).unwrap_or_else(|e| self.fail(&format!("connect: {e}")))
    }

    pub fn start_node(&mut self, id: NodeId) {
        let child = up::spawn_node(&aurora_bin(), &self.layout, id, &self.set)
            .unwrap_or_else(|e| panic!("start node {id}: {e}"));
        self.slot(id).replace(child);
    }

    /// kill -9 and reap.
    pub fn kill(&mut self, id: NodeId) {
        let mut child = self
            .slot(id)
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    pub fn restart(&mut self, id: NodeId) {
        if self.slot(id).is_some() {
            self.kill(id);
        }
        self.start_node(id);
    }

    pub fn pid(&mut self, id: NodeId) -> Option<u32> {
        self.slot(id).as_ref().map(Child::id)
    }

    /// Sends `signo` (SIGSTOP, SIGCONT, SIGTERM) to a running node.
    pub fn signal(&mut self, id: NodeId, signo: i32) {
        let child = self.slot(id).as_ref().expect("node is running");
        up::signal(child, signo);
    }

    /// Whether the node's process is still running (reaps it if it exited).
    pub fn is_running(&mut self, id: NodeId) -> bool {
        match self.slot(id) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn slot(&mut self, id: NodeId) -> &mut Option<Child> {
        &mut self
            .children
            .iter_mut()
            .find(|(n, _)| *n == id)
            .unwrap_or_else(|| panic!("no node {id}"))
            .1
    }

    /// One node's status, if it answers within a second.
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        let mut opts = self.options();
        opts.endpoints = vec![self.client_addr(id)];
        opts.request_timeout = Duration::from_secs(1);
        opts.connect_timeout = Duration::from_millis(200);
        Client::connect(opts).and_then(|mut c| c.status()).ok()
    }

    /// Waits until a running node reports itself leader; returns its id.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> NodeId {
        self.wait_for_leader_other_than(None, timeout)
    }

    /// Waits until a running node other than `not` leads.
    pub fn wait_for_leader_other_than(&mut self, not: Option<NodeId>, timeout: Duration) -> NodeId {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for id in self.ids() {
                if Some(id) == not || !self.is_running(id) {
                    continue;
                }
                if self.status(id).is_some_and(|s| s.role == NodeRole::Leader) {
                    return id;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.fail(&format!("no leader within {timeout:?}"))
    }

    pub fn log(&self, id: NodeId) -> String {
        std::fs::read_to_string(self.layout.log_path(id)).unwrap_or_default()
    }

    /// Panics with `what` and the tail of every node's log.
    pub fn fail(&self, what: &str) -> ! {
        let mut text = format!("{what}\n");
        for id in self.ids() {
            let log = self.log(id);
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text += &format!("--- node {id} log (last {} lines) ---\n", tail.len());
            for line in tail.into_iter().rev() {
                text += line;
                text += "\n";
            }
        }
        panic!("{text}")
    }

    /// Runs the `aurora` CLI against this cluster.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(aurora_bin())
            .args(args)
            .env("AURORA_ENDPOINTS", self.endpoints())
            .env("AURORA_CLUSTER_ID", format!("{LOCAL_CLUSTER_ID:#x}"))
            .output()
            .expect("run the aurora CLI")
    }

    /// Runs the CLI and returns its stdout, failing the test (with logs) if it exits non-zero.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        if !out.status.success() {
            self.fail(&format!(
                "aurora {} failed ({}): stdout {:?} stderr {:?}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, slot) in &mut self.children {
            if let Some(mut child) = slot.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
