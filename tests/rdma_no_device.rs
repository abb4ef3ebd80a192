//! No RDMA device at all (runs anywhere, no VM): a precise error that says how to get one.
#![cfg(feature = "rdma")]

use aurora::transport::handshake::ClusterSecret;
use aurora::transport::rdma::device::DeviceError;
use aurora::transport::rdma::{RdmaConfig, RdmaError, RdmaTransport};

#[test]
fn a_machine_without_rdma_devices_gets_an_error_naming_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    let mut cfg = RdmaConfig::new(1, 7, ClusterSecret::new(&[1; 32]).unwrap());
    cfg.sysfs = empty.path().to_path_buf();
    let err = RdmaTransport::new(cfg).err().expect("no device");
    assert!(
        matches!(err, RdmaError::Device(DeviceError::NoDevice { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&empty.path().display().to_string()), "{text}");
    assert!(
        text.contains("modprobe rdma_rxe") && text.contains("--transport tcp"),
        "{text}"
    );
}
