//! Choosing the device and GID the way perftest does (`-d DEV`, `-x GID_INDEX`), from sysfs, and
//! the errors that name the fix when the choice cannot work.
//!
//! rdma_cm addresses peers by IP, so the GID must be IPv4-mapped (`::ffff:a.b.c.d`): its address is
//! the one this node binds and dials from. Without `--gid-index`, the first IPv4-mapped RoCE v2 GID
//! is used (perftest's auto-detection); without `--rdma-device`, the first device.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where the kernel lists RDMA devices.
pub const SYSFS_INFINIBAND: &str = "/sys/class/infiniband";
/// GID table rows scanned (used rows come first; real HCAs have up to 256, rxe 1024 mostly empty).
const GID_SCAN: u32 = 128;

/// The device, port-1 GID index and the IPv4 address that GID maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChoice {
    pub device: String,
    pub gid_index: u32,
    pub addr: Ipv4Addr,
}

/// Why the device or GID cannot be used. Each message names the value and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "no RDMA device found under {sysfs}: load the NIC's driver, or for SoftRoCE `modprobe \
         rdma_rxe && rdma link add rxe0 type rxe netdev IFACE`; or run with --transport tcp"
    )]
    NoDevice { sysfs: String },
    #[error("RDMA device '{name}' does not exist; devices here: {available} (set --rdma-device to one of them)")]
    UnknownDevice { name: String, available: String },
    #[error(
        "GID index {index} on {device} port 1 is empty; IPv4-mapped GIDs there: {usable} (set \
         --gid-index to one of them, or omit it to pick the first)"
    )]
    EmptyGid {
        device: String,
        index: u32,
        usable: String,
    },
    #[error(
        "GID index {index} on {device} port 1 is {gid}, not IPv4-mapped: rdma_cm needs an IPv4 \
         address; IPv4-mapped GIDs there: {usable} (set --gid-index to one of them)"
    )]
    NotIpv4 {
        device: String,
        index: u32,
        gid: String,
        usable: String,
    },
    #[error(
        "{device} port 1 has no IPv4-mapped GID: give its network interface an IPv4 address \
         (`ip addr add A.B.C.D/N dev IFACE`), or choose another --rdma-device"
    )]
    NoIpv4Gid { device: String },
}

/// One populated GID row.
#[derive(Debug, Clone)]
struct Gid {
    index: u32,
    text: String,
    v2: bool,
    ipv4: Option<Ipv4Addr>,
}

/// The RDMA device names under `sysfs`, sorted (none when it does not exist).
pub fn list(sysfs: &Path) -> Vec<String> {
    let mut devices: Vec<String> = std::fs::read_dir(sysfs)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    devices
}

/// Chooses device and GID under `sysfs` (normally [`SYSFS_INFINIBAND`]; tests pass a fixture tree).
pub fn choose(
    sysfs: &Path,
    device: Option<&str>,
    gid_index: Option<u32>,
) -> Result<DeviceChoice, DeviceError> {
    let devices = list(sysfs);
    let Some(first) = devices.first() else {
        return Err(DeviceError::NoDevice {
            sysfs: sysfs.display().to_string(),
        });
    };
    let name = match device {
        Some(name) if devices.iter().any(|d| d == name) => name.to_string(),
        Some(name) => {
            return Err(DeviceError::UnknownDevice {
                name: name.to_string(),
                available: devices.join(", "),
            })
        }
        None => first.clone(),
    };
    let port = sysfs.join(&name).join("ports/1");
    let gids = read_gids(&port);
    let usable = || {
        let list: Vec<String> = gids
            .iter()
            .filter_map(|g| g.ipv4.map(|a| format!("{} (::ffff:{a})", g.index)))
            .collect();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    };
    let chosen = match gid_index {
        Some(index) => {
            let Some(gid) = gids.iter().find(|g| g.index == index) else {
                return Err(DeviceError::EmptyGid {
                    device: name,
                    index,
                    usable: usable(),
                });
            };
            if gid.ipv4.is_none() {
                return Err(DeviceError::NotIpv4 {
                    device: name,
                    index,
                    gid: gid.text.clone(),
                    usable: usable(),
                });
            }
            gid
        }
        None => match gids
            .iter()
            .find(|g| g.ipv4.is_some() && g.v2)
            .or_else(|| gids.iter().find(|g| g.ipv4.is_some()))
        {
            Some(gid) => gid,
            None => return Err(DeviceError::NoIpv4Gid { device: name }),
        },
    };
    Ok(DeviceChoice {
        gid_index: chosen.index,
        addr: chosen.ipv4.expect("chosen GIDs are IPv4-mapped"),
        device: name,
    })
}

fn read_gids(port: &Path) -> Vec<Gid> {
    let mut gids = Vec::new();
    for index in 0..GID_SCAN {
        let Ok(text) = std::fs::read_to_string(port.join(format!("gids/{index}"))) else {
            continue;
        };
        let text = text.trim().to_string();
        let Some(bytes) = parse_gid(&text) else {
            continue;
        };
        if bytes == [0; 16] {
            continue;
        }
        let v2 = std::fs::read_to_string(port.join(format!("gid_attrs/types/{index}")))
            .map(|t| t.trim() == "RoCE v2")
            .unwrap_or(false);
        let ipv4 = (bytes[..10] == [0; 10] && bytes[10..12] == [0xff, 0xff])
            .then(|| Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]));
        gids.push(Gid {
            index,
            text,
            v2,
            ipv4,
        });
    }
    gids
}

/// Parses sysfs's GID form: eight colon-separated groups of four hex digits.
fn parse_gid(text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut groups = text.split(':');
    for pair in out.chunks_exact_mut(2) {
        let group = u16::from_str_radix(groups.next()?, 16).ok()?;
        pair.copy_from_slice(&group.to_be_bytes());
    }
    groups.next().is_none().then_some(out)
}

/// The default sysfs root as a path.
pub fn default_sysfs() -> PathBuf {
    PathBuf::from(SYSFS_INFINIBAND)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GID rows of a fixture device: (index, gid text, type).
    type Rows<'a> = &'a [(u32, &'a str, &'a str)];

    /// A fixture tree of devices and their port-1 GID rows.
    fn fixture(devices: &[(&str, Rows)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, rows) in devices {
            let port = dir.path().join(name).join("ports/1");
            std::fs::create_dir_all(port.join("gids")).unwrap();
            std::fs::create_dir_all(port.join("gid_attrs/types")).unwrap();
            for (index, gid, kind) in *rows {
                std::fs::write(port.join(format!("gids/{index}")), format!("{gid}\n")).unwrap();
                std::fs::write(
                    port.join(format!("gid_attrs/types/{index}")),
                    format!("{kind}\n"),
                )
                .unwrap();
            }
        }
        dir
    }

    const LINK_LOCAL: &str = "fe80:0000:0000:0000:dcae:b0ff:fe89:7cad";
    const MAPPED_V1: &str = "0000:0000:0000:0000:0000:ffff:c000:0201";
    const MAPPED_V2: &str = "0000:0000:0000:0000:0000:ffff:c000:0202";

    #[test]
    fn auto_detection_picks_the_first_ipv4_mapped_roce_v2_gid() {
        let dir = fixture(&[(
            "mlx5_0",
            &[
                (0, LINK_LOCAL, "RoCE v2"),
                (1, MAPPED_V1, "IB/RoCE v1"),
                (3, MAPPED_V2, "RoCE v2"),
            ],
        )]);
        let choice = choose(dir.path(), None, None).unwrap();
        assert_eq!(
            choice,
            DeviceChoice {
                device: "mlx5_0".into(),
                gid_index: 3,
                addr: Ipv4Addr::new(192, 0, 2, 2)
            }
        );
        let explicit = choose(dir.path(), Some("mlx5_0"), Some(1)).unwrap();
        assert_eq!(explicit.gid_index, 1);
        assert_eq!(explicit.addr, Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn each_bad_choice_names_the_value_and_the_usable_alternatives() {
        let missing = tempfile::tempdir().unwrap();
        let err = choose(&missing.path().join("absent"), None, None).unwrap_err();
        assert!(matches!(err, DeviceError::NoDevice { .. }), "{err}");
        assert!(err.to_string().contains("rdma link add"), "{err}");

        let dir = fixture(&[
            (
                "rxe0",
                &[(0, LINK_LOCAL, "RoCE v2"), (1, MAPPED_V1, "RoCE v2")],
            ),
            ("rxe1", &[(0, LINK_LOCAL, "RoCE v2")]),
        ]);
        let err = choose(dir.path(), Some("mlx4_0"), None).unwrap_err();
        assert!(err.to_string().contains("rxe0, rxe1"), "{err}");
        let err = choose(dir.path(), Some("rxe0"), Some(0)).unwrap_err();
        assert!(
            matches!(err, DeviceError::NotIpv4 { index: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("1 (::ffff:192.0.2.1)"), "{err}");
        let err = choose(dir.path(), Some("rxe0"), Some(7)).unwrap_err();
        assert!(
            matches!(err, DeviceError::EmptyGid { index: 7, .. }),
            "{err}"
        );
        let err = choose(dir.path(), Some("rxe1"), None).unwrap_err();
        assert_eq!(
            err,
            DeviceError::NoIpv4Gid {
                device: "rxe1".into()
            }
        );
    }

    #[test]
    fn gid_text_parses_only_in_sysfs_form() {
        assert_eq!(parse_gid(MAPPED_V1).unwrap()[12..], [192, 0, 2, 1]);
        assert_eq!(parse_gid("0000:ffff"), None);
        assert_eq!(parse_gid("zzzz:0000:0000:0000:0000:ffff:c000:0201"), None);
        assert_eq!(
            parse_gid("0000:0000:0000:0000:0000:ffff:c000:0201:0000"),
            None
        );
    }
}
