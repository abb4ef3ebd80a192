//! A locked-memory limit too low for the pool: a precise error naming the limit and the fix. Its
//! own test binary, because it lowers RLIMIT_MEMLOCK and drops CAP_IPC_LOCK for the whole process.
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::rdma::{RdmaError, RdmaTransport};
use rdma_support::*;

/// Clears CAP_IPC_LOCK from the effective set: as root it would let registration ignore the limit.
fn drop_ipc_lock() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data words are what capget/capset take for version 3.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_IPC_LOCK);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn a_memlock_limit_below_the_pool_is_named_with_the_fix() {
    const LIMIT_BYTES: u64 = 64 << 10;
    let limit = libc::rlimit {
        rlim_cur: LIMIT_BYTES,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
    drop_ipc_lock();
    let cfg = node(1, 0, &[], &[]); // a 1 MiB pool
    let err = RdmaTransport::new(cfg)
        .err()
        .expect("registration must fail under a 64 KiB limit");
    match &err {
        RdmaError::Memlock {
            limit_bytes,
            region_bytes,
            device,
        } => {
            assert_eq!(*limit_bytes, LIMIT_BYTES);
            assert_eq!(*region_bytes, 256 * 4096);
            assert_eq!(device, &dev(0).0);
        }
        other => panic!("expected a memlock error, got: {other}"),
    }
    assert!(err.to_string().contains("ulimit -l unlimited"), "{err}");
}
