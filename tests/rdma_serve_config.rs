//! `aurora serve` with `transport = "rdma"` and a configuration the machine cannot honour exits at
//! once with the transport's precise error. Runs on the host (no RDMA there: every case must say
//! that no device exists and how to get one) and in the SoftRoCE VM (rxe0..2: each case names the
//! wrong value and the ones present); hack/rdma-test.sh runs this binary in both places.
#![cfg(feature = "rdma")]

use std::path::Path;
use std::process::Command;

/// The RDMA devices this machine has.
fn devices() -> Vec<String> {
    use aurora::transport::rdma::device;
    device::list(&device::default_sysfs())
}

/// A port nothing listens on now (node 1 binds its admin port before opening the transport).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A 3-member rdma config for node 1 with `rdma` as its [rdma] section and node 1 at `ip`.
fn config(dir: &Path, ip: &str, rdma: &str) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    let p = free_port();
    let text = format!(
        "cluster_id = 0x5EED\nnode_id = 1\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
         data_dir = \"{data}\"\ntransport = \"rdma\"\n\
         [[members]]\nid = 1\npeer_addr = \"{ip}:17101\"\nclient_addr = \"127.0.0.1:{c0}\"\n\
         admin_addr = \"127.0.0.1:{a0}\"\n\
         [[members]]\nid = 2\npeer_addr = \"192.0.2.2:17101\"\nclient_addr = \"127.0.0.1:{c1}\"\n\
         admin_addr = \"127.0.0.1:{a1}\"\n\
         [[members]]\nid = 3\npeer_addr = \"192.0.2.3:17101\"\nclient_addr = \"127.0.0.1:{c2}\"\n\
         admin_addr = \"127.0.0.1:{a2}\"\n\
         {rdma}\n",
        data = dir.join("data").display(),
        c0 = p,
        a0 = free_port(),
        c1 = p + 1,
        a1 = p + 2,
        c2 = p + 3,
        a2 = p + 4,
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Runs `aurora serve` on the config; it must exit non-zero within the test's time. Returns stderr.
fn serve_fails(config: &Path) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aurora"));
    command.arg("serve").arg("--config").arg(config);
    // The VM rig's AURORA_RDMA_DEV0… describe the guest to tests; serve would read them as
    // configuration keys (its AURORA_* environment layer).
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AURORA_RDMA_")) {
        command.env_remove(name);
    }
    let out = command.output().expect("run aurora serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "aurora serve should fail to start: {stderr}"
    );
    assert!(stderr.contains("peer transport (rdma)"), "{stderr}");
    stderr
}

/// What every case reports on a machine without RDMA devices.
fn assert_no_device(stderr: &str) {
    assert!(
        stderr.contains("no RDMA device found under /sys/class/infiniband")
            && stderr.contains("modprobe rdma_rxe")
            && stderr.contains("transport = \"tcp_uring\""),
        "{stderr}"
    );
}

#[test]
fn an_unknown_device_is_named_with_the_devices_present() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = serve_fails(&config(
        dir.path(),
        "192.0.2.1",
        "[rdma]\ndevice = \"mlx5_9\"",
    ));
    let present = devices();
    if present.is_empty() {
        assert_no_device(&stderr);
    } else {
        assert!(
            stderr.contains("RDMA device 'mlx5_9' does not exist")
                && stderr.contains(&present.join(", ")),
            "{stderr}"
        );
    }
}

#[test]
fn an_empty_gid_index_names_the_usable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = serve_fails(&config(
        dir.path(),
        "192.0.2.1",
        "[rdma]\ndevice = \"rxe0\"\ngid_index = 200",
    ));
    if devices().is_empty() {
        assert_no_device(&stderr);
    } else {
        assert!(
            stderr.contains("GID index 200 on rxe0 port 1 is empty")
                && stderr.contains("(::ffff:192.0.2.1)"),
            "{stderr}"
        );
    }
}

#[test]
fn a_peer_addr_no_device_carries_is_refused_with_the_addresses_present() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = serve_fails(&config(dir.path(), "192.0.2.99", ""));
    if devices().is_empty() {
        assert_no_device(&stderr);
    } else {
        assert!(
            stderr.contains(
                "no RDMA device has an IPv4-mapped GID for this member's peer_addr IP 192.0.2.99"
            ) && stderr.contains("= 192.0.2.1"),
            "{stderr}"
        );
    }
}

#[test]
fn a_named_device_that_does_not_carry_the_peer_addr_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = serve_fails(&config(
        dir.path(),
        "192.0.2.1",
        "[rdma]\ndevice = \"rxe1\"",
    ));
    if devices().is_empty() {
        assert_no_device(&stderr);
    } else {
        assert!(
            stderr.contains("member 1's peer_addr is 192.0.2.1:17101, but rxe1 GID")
                && stderr.contains("set this member's peer_addr to 192.0.2.2:17101"),
            "{stderr}"
        );
    }
}
