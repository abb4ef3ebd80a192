//! Bad device choices on a real device table (inside the VM): each error names the value and the fix.
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::rdma::device::DeviceError;
use aurora::transport::rdma::{RdmaError, RdmaTransport};
use rdma_support::*;

#[test]
fn a_wrong_device_name_lists_the_devices_there() {
    let mut cfg = node(1, 0, &[], &[]);
    cfg.device = Some("mlx5_9".into());
    let err = RdmaTransport::new(cfg).err().expect("no such device");
    let (d0, d1) = (dev(0).0, dev(1).0);
    assert!(
        matches!(err, RdmaError::Device(DeviceError::UnknownDevice { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'mlx5_9'")
            && text.contains(&format!("{d0}, {d1}"))
            && text.contains("--rdma-device"),
        "{text}"
    );
}

#[test]
fn a_gid_index_that_is_not_ipv4_mapped_names_the_one_that_is() {
    let good: u32 = guest("AURORA_RDMA_GID_INDEX").parse().unwrap();
    let mut cfg = node(1, 0, &[], &[]);
    cfg.gid_index = Some(0); // rxe's row 0 is the link-local IPv6 GID
    let err = RdmaTransport::new(cfg).err().expect("GID 0 is link-local");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            RdmaError::Device(DeviceError::NotIpv4 { index: 0, .. })
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("{good} (::ffff:{})", dev(0).1)),
        "{text}"
    );

    let mut cfg = node(1, 0, &[], &[]);
    cfg.gid_index = Some(100);
    let err = RdmaTransport::new(cfg).err().expect("GID 100 is empty");
    assert!(
        matches!(
            err,
            RdmaError::Device(DeviceError::EmptyGid { index: 100, .. })
        ),
        "{err}"
    );
}

#[test]
fn without_a_gid_index_the_ipv4_mapped_roce_v2_gid_is_detected() {
    let t = RdmaTransport::new(node(1, 1, &[], &[])).unwrap();
    assert_eq!(t.device().device, dev(1).0);
    assert_eq!(t.device().addr, dev(1).1);
    assert_eq!(
        t.device().gid_index,
        guest("AURORA_RDMA_GID_INDEX").parse::<u32>().unwrap()
    );
}
