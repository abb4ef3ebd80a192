//! `aurora up`: a local cluster on loopback for development, the README tour and the real-process
//! tests.
//!
//! It writes one complete configuration file per node into the data directory (so a node can be
//! restarted by hand with `aurora serve --config DIR/nodeN.toml`), a shared secret file (mode
//! 0600, kept across runs so restarted nodes still authenticate each other), and then runs
//! `aurora serve` children until Ctrl-C. A node that dies is reported and left dead — killing the
//! leader is how one tries failover — and Ctrl-C stops the rest with SIGTERM, then SIGKILL after a
//! grace period.
//!
//! [`Layout`] and [`spawn_node`] are public so that the integration tests start, kill and restart
//! nodes exactly the way `aurora up` does.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::signals::{install_stop_handler, stop_requested};
use crate::client::{Client, ClientOptions, NodeRole};
use crate::config::{NodeId, MAX_VOTERS, MIN_SECRET_BYTES};

/// Cluster id of every cluster `aurora up` writes; frames of other clusters are dropped.
pub const LOCAL_CLUSTER_ID: u64 = 0x0A17_1000;
/// First port of the default layout: node `i` (from 1) listens on `BASE + 10 (i - 1) + {1,2,3}`
/// for peers, clients and admin HTTP — the addresses the CLI's default `--endpoints` name.
pub const DEFAULT_BASE_PORT: u16 = 7100;
/// How long stopping waits for a node to exit after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the supervising loop looks at Ctrl-C and at its children.
const SUPERVISE_POLL: Duration = Duration::from_millis(50);
/// How long `aurora up` waits for the first leader before it reports that none was elected.
const LEADER_WAIT: Duration = Duration::from_secs(15);
/// Environment variables of the CLI that the daemon's configuration layer would read as keys.
const CLI_ONLY_ENV: &[&str] = &["AURORA_ENDPOINTS"];

/// `--durability` of `aurora up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Every entry is on disk (fdatasync) before it is acknowledged.
    Fsync,
    /// Replicated memory: acknowledged once a quorum holds it in memory.
    Memory,
}

impl DurabilityArg {
    fn as_toml(self) -> &'static str {
        match self {
            DurabilityArg::Fsync => "fsync",
            DurabilityArg::Memory => "memory",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Voters in the cluster (1..=7).
    #[arg(long, default_value_t = 3)]
    pub nodes: u8,
    /// Where configs, the secret, each node's WAL and its log go; reused if it exists (state
    /// survives a restart in fsync mode). Default: a fresh directory under the system temp dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    pub durability: DurabilityArg,
    /// First port of the layout (node i uses BASE+10(i-1)+1..3); 0 picks free ports.
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    pub base_port: u16,
    /// Extra configuration for every node, passed on to `aurora serve --set KEY=VALUE`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Why a local cluster could not be laid out or started.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("--nodes {0} is outside 1..={MAX_VOTERS}; choose a cluster size in that range")]
    Nodes(u8),
    #[error("--base-port {base}: node ports would run past 65535; choose a base port <= {max}")]
    BasePort { base: u16, max: u16 },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find a free loopback port: {0}; free some ports or pass --base-port")]
    NoFreePort(#[source] std::io::Error),
    #[error("cannot start node {node} ({}): {source}; is the aurora binary intact?", binary.display())]
    Spawn {
        node: NodeId,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One node's addresses on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAddrs {
    pub id: NodeId,
    pub peer: SocketAddr,
    pub client: SocketAddr,
    pub admin: SocketAddr,
}

/// A local cluster on disk: where every node's config, data and log live, and its addresses.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub nodes: Vec<NodeAddrs>,
    pub durability: DurabilityArg,
}

impl Layout {
    /// Writes the secret (kept if present) and one config per node under `dir`.
    pub fn create(
        dir: &Path,
        nodes: u8,
        durability: DurabilityArg,
        base_port: u16,
    ) -> Result<Self, UpError> {
        if nodes == 0 || usize::from(nodes) > MAX_VOTERS {
            return Err(UpError::Nodes(nodes));
        }
        let addrs = if base_port == 0 {
            free_addrs(nodes)?
        } else {
            fixed_addrs(nodes, base_port)?
        };
        let layout = Self {
            dir: dir.to_owned(),
            nodes: addrs,
            durability,
        };
        fs::create_dir_all(dir).map_err(io("create the data directory", dir))?;
        layout.write_secret()?;
        for node in &layout.nodes {
            let path = layout.config_path(node.id);
            fs::write(&path, layout.config_toml(node.id)).map_err(io("write the config", &path))?;
            let data = layout.data_dir(node.id);
            fs::create_dir_all(&data).map_err(io("create the node's data directory", &data))?;
        }
        Ok(layout)
    }

    pub fn config_path(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("node{node}.toml"))
    }

    pub fn data_dir(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("node{node}"))
    }

    pub fn log_path(&self, node: NodeId) -> PathBuf {
        self.dir.join(format!("node{node}.log"))
    }

    fn secret_path(&self) -> PathBuf {
        self.dir.join("cluster.secret")
    }

    /// The client endpoints, comma-separated, as `--endpoints` and `AURORA_ENDPOINTS` take them.
    pub fn client_endpoints(&self) -> String {
        let list: Vec<String> = self.nodes.iter().map(|n| n.client.to_string()).collect();
        list.join(",")
    }

    pub fn node(&self, id: NodeId) -> &NodeAddrs {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("node ids of a layout are 1..=nodes")
    }

    fn write_secret(&self) -> Result<(), UpError> {
        let path = self.secret_path();
        if path.exists() {
            return Ok(());
        }
        let mut random = [0u8; MIN_SECRET_BYTES];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
            .map_err(io("read random bytes from", Path::new("/dev/urandom")))?;
        let hex: String = random.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("create the secret file", &path))?;
        file.write_all(hex.as_bytes())
            .map_err(io("write the secret file", &path))
    }

    /// A complete node configuration; loopback timings tuned for a shared laptop, not a fabric.
    fn config_toml(&self, node: NodeId) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Written by `aurora up`; rewritten on every run. Node {node} of a local cluster.\n\
             cluster_id = {LOCAL_CLUSTER_ID:#x}\n\
             node_id = {node}\n\
             secret_file = \"cluster.secret\"\n\
             data_dir = \"node{node}\"\n\
             durability = \"{}\"\n\
             transport = \"tcp_uring\"",
            self.durability.as_toml()
        );
        if self.nodes.len() == 1 && self.durability == DurabilityArg::Memory {
            let _ = writeln!(
                s,
                "allow_single_node_memory = true   # asked for by --durability memory --nodes 1"
            );
        }
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "\n[[members]]\nid = {}\nrole = \"voter\"\npeer_addr = \"{}\"\nclient_addr = \"{}\"\nadmin_addr = \"{}\"",
                n.id, n.peer, n.client, n.admin
            );
        }
        let _ = writeln!(
            s,
            "\n[timing]\nheartbeat_interval_ms = 20\nelection_timeout_min_ms = 300\n\
             election_timeout_max_ms = 600\nrequest_timeout_ms = 2000\n\
             \n[runtime]\nshards = 1\npin = false\nspin_us = 0"
        );
        s
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UpError {
    let path = path.to_owned();
    move |source| UpError::Io { what, path, source }
}

fn fixed_addrs(nodes: u8, base: u16) -> Result<Vec<NodeAddrs>, UpError> {
    let span = 10 * u16::from(nodes);
    let max = u16::MAX - span;
    if base > max {
        return Err(UpError::BasePort { base, max });
    }
    Ok((1..=nodes)
        .map(|i| {
            let first = base + 10 * (u16::from(i) - 1);
            let at = |offset: u16| SocketAddr::from(([127, 0, 0, 1], first + offset));
            NodeAddrs {
                id: NodeId::from(i),
                peer: at(1),
                client: at(2),
                admin: at(3),
            }
        })
        .collect())
}

/// Ports the kernel hands out now. Another process may take one before the node binds it; the
/// node then fails to start with an address-in-use error naming the port.
fn free_addrs(nodes: u8) -> Result<Vec<NodeAddrs>, UpError> {
    let listeners = (0..3 * usize::from(nodes))
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UpError::NoFreePort)?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UpError::NoFreePort)?;
    Ok((1..=nodes)
        .zip(ports.chunks_exact(3))
        .map(|(i, p)| {
            let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
            NodeAddrs {
                id: NodeId::from(i),
                peer: at(p[0]),
                client: at(p[1]),
                admin: at(p[2]),
            }
        })
        .collect())
}

/// Starts `binary serve` for `node` of `layout`, its output appended to the node's log file.
pub fn spawn_node(
    binary: &Path,
    layout: &Layout,
    node: NodeId,
    set: &[String],
) -> Result<Child, UpError> {
    let log_path = layout.log_path(node);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io("open the node log", &log_path))?;
    let log_err = log
        .try_clone()
        .map_err(io("open the node log", &log_path))?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config")
        .arg(layout.config_path(node));
    for kv in set {
        command.arg("--set").arg(kv);
    }
    for name in CLI_ONLY_ENV {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| UpError::Spawn {
            node,
            binary: binary.to_owned(),
            source,
        })
}

/// Sends SIGTERM, waits up to [`STOP_GRACE`], then SIGKILL; returns how the child ended.
pub fn stop_child(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    child.wait()
}

/// Sends `signo` to a child that has not been reaped (so its pid cannot have been reused).
pub fn signal(child: &Child, signo: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("Linux pids fit in pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid belongs to our unreaped child.
    unsafe {
        libc::kill(pid, signo);
    }
}

/// Runs `aurora up`; returns the process exit code.
pub fn run(args: &UpArgs) -> i32 {
    match up(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aurora up: {e}");
            1
        }
    }
}

fn up(args: &UpArgs) -> Result<i32, UpError> {
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("aurora-up-{}", std::process::id())),
    };
    let layout = Layout::create(&dir, args.nodes, args.durability, args.base_port)?;
    let binary = std::env::current_exe().map_err(io("find the running binary", Path::new("")))?;
    install_stop_handler();
    let mut children: Vec<(NodeId, Option<Child>)> = Vec::new();
    for node in &layout.nodes {
        match spawn_node(&binary, &layout, node.id, &args.set) {
            Ok(child) => children.push((node.id, Some(child))),
            Err(e) => {
                stop_all(&mut children);
                return Err(e);
            }
        }
    }
    println!(
        "aurora up: {} node(s), durability {}, data in {}",
        layout.nodes.len(),
        layout.durability.as_toml(),
        layout.dir.display()
    );
    for (id, child) in &children {
        let n = layout.node(*id);
        let pid = child.as_ref().map_or(0, Child::id);
        println!(
            "  node {id}: pid {pid}  client {}  admin http://{}  log {}",
            n.client,
            n.admin,
            layout.log_path(*id).display()
        );
    }
    println!("export AURORA_ENDPOINTS={}", layout.client_endpoints());
    report_leader(&layout, &mut children);
    println!("Press Ctrl-C to stop the cluster.");
    let _ = std::io::stdout().flush();
    let mut alive = children.len();
    while !stop_requested() && alive > 0 {
        std::thread::sleep(SUPERVISE_POLL);
        for (id, slot) in &mut children {
            let Some(child) = slot else { continue };
            match child.try_wait() {
                Ok(Some(status)) => {
                    // A signal came from outside (a user trying failover); anything else is the
                    // node's own verdict, whose last log line usually says why.
                    let why = match status.signal() {
                        Some(_) => String::new(),
                        None => format!(": {}", last_log_line(&layout.log_path(*id))),
                    };
                    println!(
                        "aurora up: node {id} exited ({status}){why} (log: {})",
                        layout.log_path(*id).display()
                    );
                    *slot = None;
                    alive -= 1;
                }
                Ok(None) => {}
                Err(e) => eprintln!("aurora up: cannot check node {id}: {e}"),
            }
        }
    }
    if alive == 0 {
        println!("aurora up: every node has exited; stopping");
        return Ok(1);
    }
    println!("aurora up: stopping {alive} node(s)");
    stop_all(&mut children);
    println!("aurora up: stopped; data kept in {}", layout.dir.display());
    Ok(0)
}

/// The last non-empty line of a node's log, without terminal colour codes: usually why it
/// stopped.
fn last_log_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return "(empty log)".to_owned();
    };
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequence: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Waits (bounded) until some node reports itself leader, and says which; a cluster that elects
/// none in time is reported, not fatal (a node may still be starting).
fn report_leader(layout: &Layout, children: &mut [(NodeId, Option<Child>)]) {
    let deadline = Instant::now() + LEADER_WAIT;
    let mut any_alive = || {
        children
            .iter_mut()
            .any(|(_, c)| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))))
    };
    while Instant::now() < deadline && !stop_requested() {
        if !any_alive() {
            return; // the supervising loop reports each exit
        }
        for node in &layout.nodes {
            let mut opts = ClientOptions::new(vec![node.client]);
            opts.cluster_id = LOCAL_CLUSTER_ID;
            opts.request_timeout = Duration::from_millis(500);
            opts.connect_timeout = Duration::from_millis(100);
            let status = Client::connect(opts).and_then(|mut c| c.status());
            if let Ok(s) = status {
                if s.role == NodeRole::Leader {
                    println!(
                        "leader: node {} (term {}); the cluster is ready",
                        s.node_id, s.term
                    );
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "aurora up: no leader after {} s; check the node logs",
        LEADER_WAIT.as_secs()
    );
}

fn stop_all(children: &mut [(NodeId, Option<Child>)]) {
    for (_, slot) in children.iter() {
        if let Some(child) = slot {
            signal(child, libc::SIGTERM);
        }
    }
    for (id, slot) in children.iter_mut() {
        if let Some(mut child) = slot.take() {
            match stop_child(&mut child) {
                Ok(status) if status.success() => {}
                Ok(status) => println!("aurora up: node {id} stopped ({status})"),
                Err(e) => eprintln!("aurora up: cannot stop node {id}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_lose_their_colour_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.log");
        fs::write(
            &path,
            "first\n\u{1b}[2mtime\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m bind failed\n\n",
        )
        .expect("write");
        assert_eq!(last_log_line(&path), "time ERROR bind failed");
        assert_eq!(last_log_line(&dir.path().join("none")), "(empty log)");
    }

    #[test]
    fn fixed_layout_matches_the_documented_ports() {
        let addrs = fixed_addrs(3, DEFAULT_BASE_PORT).expect("fits");
        assert_eq!(addrs[0].client.to_string(), "127.0.0.1:7102");
        assert_eq!(addrs[1].peer.to_string(), "127.0.0.1:7111");
        assert_eq!(addrs[2].admin.to_string(), "127.0.0.1:7123");
        assert!(matches!(
            fixed_addrs(3, 65_530),
            Err(UpError::BasePort { .. })
        ));
    }

    #[test]
    fn written_configs_load_and_keep_the_secret_across_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::create(dir.path(), 3, DurabilityArg::Memory, 0).expect("layout");
        let secret = fs::read(layout.secret_path()).expect("secret");
        for node in &layout.nodes {
            let config = crate::config::load(
                &layout.config_path(node.id),
                Vec::<(String, String)>::new(),
                Vec::<String>::new(),
            )
            .unwrap_or_else(|e| panic!("node {} config: {e}", node.id));
            assert_eq!(config.node_id, node.id);
            assert_eq!(config.members.len(), 3);
            assert_eq!(config.this_member().client_addr, node.client);
            assert_eq!(config.data_dir, layout.data_dir(node.id));
        }
        Layout::create(dir.path(), 3, DurabilityArg::Memory, 0).expect("second run");
        assert_eq!(fs::read(layout.secret_path()).expect("secret"), secret);
        assert!(matches!(
            Layout::create(dir.path(), 0, DurabilityArg::Fsync, 0),
            Err(UpError::Nodes(0))
        ));
    }
}
