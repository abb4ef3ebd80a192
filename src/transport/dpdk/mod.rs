//! The DPDK transport's layers (DESIGN.md §4), split as eRPC splits them: [`packet`] (Ethernet/
//! IPv4/UDP framing and checks), [`session`] (sans-IO reliability per peer), [`datagram`] (the
//! [`Transport`](crate::transport::Transport) over any [`port::Port`]) and, with feature `dpdk`,
//! the DPDK device under it: [`eal`] (EAL from config), [`ethdev`] (an ethdev queue pair as a
//! port) over the C shim in native/ ([`ffi`]). The first three build everywhere and are tested
//! over in-process links; the DPDK parts are tested on memif and af_packet/af_xdp rigs (hack/).
pub mod datagram;
#[cfg(feature = "dpdk")]
pub mod eal;
#[cfg(feature = "dpdk")]
pub mod ethdev;
#[cfg(feature = "dpdk")]
mod ffi;
#[cfg(feature = "dpdk")]
pub mod node;
pub mod packet;
#[cfg(feature = "dpdk")]
pub mod pingpong;
pub mod port;
pub mod session;
