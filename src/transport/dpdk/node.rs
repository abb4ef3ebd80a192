//! The `dpdk` transport of a node: EAL, the ethdev port and the datagram transport, from the
//! node's validated configuration (`transport = "dpdk"`, `[dpdk]`).

use super::datagram::{DatagramConfig, DatagramTransport};
use super::eal::{Eal, EalError, EalSpec};
use super::ethdev::{EthPort, PortError, PortSpec};
use super::packet::Endpoint;
use super::session::SessionConfig;
use crate::config::Config;
use crate::transport::TransportError;

/// The DPDK transport: the datagram transport over an ethdev.
pub type DpdkTransport = DatagramTransport<EthPort>;

/// Why the DPDK transport could not start; each names its cause.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error(transparent)]
    Eal(#[from] EalError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("DPDK configuration: {0}")]
    Config(String),
}

/// Knobs that are not in the node configuration (defaults fit the rigs and a daemon).
#[derive(Debug, Clone)]
pub struct DpdkOptions {
    pub session: SessionConfig,
    pub slab_bytes: usize,
    pub pool_slabs: usize,
    pub rx_burst: usize,
    pub mbufs: u32,
    pub link_timeout_ms: u32,
    /// See [`DatagramConfig::test_drop_one_in`]; 0 in production.
    pub test_drop_one_in: u64,
}

impl Default for DpdkOptions {
    fn default() -> Self {
        Self {
            // Retransmit after 2 ms (a memif round trip is < 1 µs, but three spinning processes on
            // two cores get descheduled for milliseconds), give up after ~3 s of silence (a
            // loaded CI box starves a process for over a second).
            session: SessionConfig {
                window_frames: 256,
                rto_initial_ns: 2_000_000,
                rto_max_ns: 200_000_000,
                max_retransmits: 20,
                syn_interval_ns: 10_000_000,
            },
            slab_bytes: 2048,
            pool_slabs: 4096,
            rx_burst: 32,
            mbufs: 4095,
            link_timeout_ms: 30_000,
            test_drop_one_in: 0,
        }
    }
}

/// The device name of a vdev argument (`net_memif0,role=server` → `net_memif0`).
pub fn vdev_name(vdev: &str) -> &str {
    vdev.split(',').next().unwrap_or_default()
}

/// Starts EAL and the port of this node, and builds its transport. Call on the shard's thread.
pub fn open(cfg: &Config, opts: &DpdkOptions) -> Result<DpdkTransport, DpdkError> {
    let dpdk = cfg
        .dpdk
        .as_ref()
        .ok_or_else(|| DpdkError::Config("transport = \"dpdk\" needs a [dpdk] table".into()))?;
    if dpdk.vdevs.is_empty() {
        return Err(DpdkError::Config(
            "[dpdk] vdevs is empty: name this node's device(s)".into(),
        ));
    }
    let spec = EalSpec {
        file_prefix: format!("aurora-{:x}-{}", cfg.cluster_id, cfg.node_id),
        cores: if cfg.runtime.pin {
            cfg.runtime.cores.clone()
        } else {
            Vec::new()
        },
        vdevs: dpdk.vdevs.clone(),
        extra_args: dpdk.eal_args.clone(),
    };
    let eal = Eal::init(&spec)?;
    // One port per vdev: one shared segment (af_packet on a bridge) or one per peer (a memif
    // mesh); the transport learns which peer is behind which port.
    let mut ports = Vec::with_capacity(dpdk.vdevs.len());
    for vdev in &dpdk.vdevs {
        ports.push(EthPort::open(
            eal.clone(),
            &PortSpec {
                name: vdev_name(vdev).to_string(),
                mbufs: opts.mbufs,
                rx_desc: 1024,
                tx_desc: 1024,
                link_timeout_ms: opts.link_timeout_ms,
            },
        )?);
    }
    let endpoint = |id| {
        dpdk.peers.iter().find(|p| p.id == id).map(|p| Endpoint {
            mac: p.mac,
            ip: p.ip,
            udp_port: p.udp_port,
        })
    };
    let local = endpoint(cfg.node_id).ok_or_else(|| {
        DpdkError::Config(format!(
            "no [[dpdk.peers]] entry for this node {}",
            cfg.node_id
        ))
    })?;
    let peers = cfg
        .members
        .iter()
        .filter(|m| m.id != cfg.node_id)
        .filter_map(|m| endpoint(m.id).map(|e| (m.id, e)))
        .collect();
    let max_payload = u32::try_from(cfg.limits.max_frame_bytes).unwrap_or(u32::MAX);
    let transport = DatagramTransport::new(
        ports,
        DatagramConfig {
            node_id: cfg.node_id,
            cluster_id: cfg.cluster_id,
            secret: cfg.secret.as_bytes().to_vec(),
            local,
            peers,
            session: opts.session,
            slab_bytes: opts.slab_bytes,
            pool_slabs: opts.pool_slabs,
            rx_burst: opts.rx_burst,
            max_payload_len_bytes: max_payload.min(crate::wire::MAX_PAYLOAD_LEN_BYTES),
            test_drop_one_in: opts.test_drop_one_in,
        },
    )?;
    Ok(transport)
}
