//! A DPDK ethdev queue pair as a [`Port`]: the datagram transport's device under feature `dpdk`.
//!
//! One RX and one TX queue per port, owned by one shard (DPDK queues are not thread-safe, and a
//! shard owns its queues the way it owns its buffers). Sends are built straight into mbufs from
//! the port's mempool and batched; [`Port::flush`] hands the batch to `rte_eth_tx_burst` and
//! keeps what the device did not take for the next flush (bounded: a full batch drops new frames,
//! counted, and the reliability layer resends them). Received mbufs are lent to the transport as
//! [`Mbuf`] and freed when it drops them. No allocation after [`EthPort::open`].

use super::eal::{strerror, Eal};
use super::ffi;
use super::port::Port;
use std::ffi::CString;
use std::ptr::NonNull;

/// Frames batched for `rte_eth_tx_burst` at most.
const TX_BATCH: usize = 64;
/// Frames taken by one `rte_eth_rx_burst` at most.
const RX_BATCH: usize = 64;

/// Why a port could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("DPDK device {name:?} not found; EAL probed {count} port(s): check [dpdk] vdevs")]
    NotFound { name: String, count: u16 },
    #[error("creating the DPDK mempool {name:?} ({mbufs} mbufs) failed: {message}")]
    Mempool {
        name: String,
        mbufs: u32,
        message: String,
    },
    #[error("starting DPDK port {name:?} failed: {message} (errno {errno})")]
    Start {
        name: String,
        errno: i32,
        message: String,
    },
    #[error("DPDK port {name:?}: link did not come up within {timeout_ms} ms (for memif: is the peer process running with the same socket?)")]
    LinkDown { name: String, timeout_ms: u32 },
}

/// How to open a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The device name EAL gave it: the vdev name (`net_memif0`).
    pub name: String,
    /// Mbufs in the port's mempool (RX ring + TX batch + in flight).
    pub mbufs: u32,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// How long to wait for link up (memif: until the peer connects).
    pub link_timeout_ms: u32,
}

/// Device counters.
pub type DeviceStats = ffi::shim_port_stats;

/// One ethdev queue pair; see the module docs.
pub struct EthPort {
    port_id: u16,
    name: String,
    pool: NonNull<ffi::rte_mempool>,
    mac: [u8; 6],
    max_frame_bytes: usize,
    batch: [*mut ffi::rte_mbuf; TX_BATCH],
    batched: usize,
    /// Where rx_burst writes mbuf pointers (kept here: zeroing a fresh array per poll showed up
    /// as 14 % of a spinning client's profile).
    rx_pkts: [*mut ffi::rte_mbuf; RX_BATCH],
    /// Frames lost because the batch was full (the device did not drain it).
    pub tx_batch_full: u64,
    /// Multi-segment frames dropped on receive (we never send them; a jumbo frame a peer sent).
    pub rx_multi_segment: u64,
    _eal: Eal,
}

/// A received mbuf, freed on drop.
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the mbuf came from rx_burst and is owned by this handle alone.
        unsafe { ffi::shim_mbuf_free(self.0.as_ptr()) }
    }
}

impl EthPort {
    /// Opens `spec.name` with one queue pair and its own mempool, and waits for link up.
    pub fn open(eal: Eal, spec: &PortSpec) -> Result<EthPort, PortError> {
        let name = spec.name.clone();
        let c_name = CString::new(name.as_str()).map_err(|_| PortError::NotFound {
            name: name.clone(),
            count: 0,
        })?;
        let mut port_id = 0u16;
        // SAFETY: c_name is a valid C string; port_id is a valid out pointer.
        if unsafe { ffi::shim_port_by_name(c_name.as_ptr(), &mut port_id) } < 0 {
            // SAFETY: plain query.
            let count = unsafe { ffi::shim_port_count() };
            return Err(PortError::NotFound { name, count });
        }
        let pool_name = format!("aurora_p{port_id}");
        let c_pool = CString::new(pool_name.as_str()).expect("no NUL in a formatted name");
        // Data room for a full 1514-byte frame plus slack; memif's default buffers are 2048.
        // SAFETY: valid name; EAL is initialised (we hold an `Eal`).
        let pool = unsafe { ffi::shim_pool_create(c_pool.as_ptr(), spec.mbufs, 2048, -1) };
        let Some(pool) = NonNull::new(pool) else {
            // SAFETY: plain query of rte_errno.
            let errno = unsafe { ffi::shim_errno() };
            return Err(PortError::Mempool {
                name: pool_name,
                mbufs: spec.mbufs,
                message: strerror(errno),
            });
        };
        let mut mac = [0u8; 6];
        let mut mtu = 0u16;
        // SAFETY: port_id exists, pool is a live mempool, mac/mtu are valid out pointers.
        let rc = unsafe {
            ffi::shim_port_start(
                port_id,
                pool.as_ptr(),
                spec.rx_desc,
                spec.tx_desc,
                mac.as_mut_ptr(),
                &mut mtu,
            )
        };
        if rc < 0 {
            // SAFETY: the pool is not in use by a started port.
            unsafe { ffi::shim_pool_free(pool.as_ptr()) };
            return Err(PortError::Start {
                name,
                errno: -rc,
                message: strerror(-rc),
            });
        }
        // SAFETY: the port is started.
        if unsafe { ffi::shim_port_wait_link(port_id, spec.link_timeout_ms) } != 1 {
            // SAFETY: started port, stopped once.
            unsafe { ffi::shim_port_stop(port_id) };
            return Err(PortError::LinkDown {
                name,
                timeout_ms: spec.link_timeout_ms,
            });
        }
        tracing::info!(port = %name, port_id, mtu, mac = ?mac, "DPDK port up");
        Ok(EthPort {
            port_id,
            name,
            pool,
            mac,
            // Ethernet header on top of the MTU; the mbuf data room bounds it too.
            max_frame_bytes: (usize::from(mtu) + 14).min(2048),
            batch: [std::ptr::null_mut(); TX_BATCH],
            batched: 0,
            rx_pkts: [std::ptr::null_mut(); RX_BATCH],
            tx_batch_full: 0,
            rx_multi_segment: 0,
            _eal: eal,
        })
    }

    /// The device's own MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's counters (`rte_eth_stats_get`).
    pub fn device_stats(&self) -> Option<DeviceStats> {
        let mut out = DeviceStats::default();
        // SAFETY: the port is started; out is a valid pointer.
        (unsafe { ffi::shim_port_stats(self.port_id, &mut out) } == 0).then_some(out)
    }
}

impl Drop for EthPort {
    fn drop(&mut self) {
        for m in &self.batch[..self.batched] {
            // SAFETY: batched mbufs are owned by the batch.
            unsafe { ffi::shim_mbuf_free(*m) };
        }
        // SAFETY: the port was started by `open`; stop and close it once, then free its pool
        // (no queue refers to it after close).
        unsafe {
            ffi::shim_port_stop(self.port_id);
            ffi::shim_pool_free(self.pool.as_ptr());
        }
    }
}

impl Port for EthPort {
    type Rx = Mbuf;

    fn rx_bytes(rx: &Mbuf) -> &[u8] {
        let (mut len, mut segs) = (0u16, 0u16);
        // SAFETY: the mbuf is alive while `rx` is borrowed; data/len describe its first segment.
        unsafe {
            let data = ffi::shim_mbuf_data(rx.0.as_ptr(), &mut len, &mut segs);
            if segs != 1 {
                // Only the first segment would be seen: report nothing, the parser drops it.
                return &[];
            }
            std::slice::from_raw_parts(data, usize::from(len))
        }
    }

    fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max_frames: usize) {
        let want = max_frames.min(RX_BATCH).min(out.capacity() - out.len());
        // SAFETY: rx_pkts has room for `want` pointers; the port and queue 0 exist.
        let n = unsafe { ffi::shim_rx_burst(self.port_id, self.rx_pkts.as_mut_ptr(), want as u16) };
        for p in &self.rx_pkts[..usize::from(n)] {
            let m = Mbuf(NonNull::new(*p).expect("rx_burst returns non-null mbufs"));
            out.push(m);
        }
    }

    fn send_with(&mut self, len_bytes: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        debug_assert!(len_bytes <= self.max_frame_bytes);
        if self.batched == TX_BATCH {
            self.flush();
            if self.batched == TX_BATCH {
                self.tx_batch_full += 1;
                return false;
            }
        }
        let mut data: *mut u8 = std::ptr::null_mut();
        // SAFETY: the pool is live; data is a valid out pointer.
        let m = unsafe { ffi::shim_mbuf_alloc(self.pool.as_ptr(), len_bytes as u16, &mut data) };
        if m.is_null() {
            return false;
        }
        // SAFETY: shim_mbuf_alloc appended exactly len_bytes writable bytes at `data`.
        fill(unsafe { std::slice::from_raw_parts_mut(data, len_bytes) });
        self.batch[self.batched] = m;
        self.batched += 1;
        true
    }

    fn flush(&mut self) {
        if self.batched == 0 {
            return;
        }
        // SAFETY: batch[..batched] are owned mbufs; the device takes ownership of the first `sent`.
        let sent = usize::from(unsafe {
            ffi::shim_tx_burst(self.port_id, self.batch.as_mut_ptr(), self.batched as u16)
        });
        self.batch.copy_within(sent..self.batched, 0);
        self.batched -= sent;
    }

    fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }
}
