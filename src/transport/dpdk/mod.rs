//! The DPDK transport's layers (DESIGN.md §4), split as eRPC splits them.
pub mod datagram;
pub mod packet;
pub mod port;
pub mod session;
