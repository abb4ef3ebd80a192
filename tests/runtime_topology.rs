//! Topology reading and shard placement against sysfs fixture trees (tests/fixtures/sysfs/):
//! `two-socket-64` (2 nodes x 16 cores x 2 SMT threads, ConnectX on node 1) and `vm-2core` (copied
//! from the project's 2-vCPU VM), plus small synthetic trees for the error paths.

use std::path::{Path, PathBuf};

use aurora::runtime::{CpulistError, Device, NumaNode, PlacementError, Topology, TopologyError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(name)
}

fn two_socket() -> Topology {
    Topology::read(&fixture("two-socket-64")).expect("two-socket fixture parses")
}

fn vm() -> Topology {
    Topology::read(&fixture("vm-2core")).expect("VM fixture parses")
}

fn range(first: usize, last: usize) -> Vec<usize> {
    (first..=last).collect()
}

fn node_of_each(topology: &Topology, cpus: &[usize]) -> Vec<Option<u32>> {
    cpus.iter().map(|&cpu| topology.node_of_cpu(cpu)).collect()
}

/// A scratch sysfs tree built file by file.
struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("temp dir"))
    }

    fn file(self, path: &str, content: &str) -> Self {
        let full = self.0.path().join(path);
        std::fs::create_dir_all(full.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
        self
    }

    fn read(&self) -> Result<Topology, TopologyError> {
        Topology::read(self.0.path())
    }
}

#[test]
fn two_socket_box_has_two_nodes_of_32_cpus_with_smt_siblings() {
    let t = two_socket();
    assert_eq!(t.online_cpus(), range(0, 63));
    let node0 = [range(0, 15), range(32, 47)].concat();
    let node1 = [range(16, 31), range(48, 63)].concat();
    assert_eq!(
        t.nodes(),
        [
            NumaNode { id: 0, cpus: node0 },
            NumaNode { id: 1, cpus: node1 }
        ]
    );
    assert_eq!(t.smt_siblings(5), [5, 37]);
    assert_eq!(t.smt_siblings(50), [18, 50]);
    assert_eq!(t.node_of_cpu(40), Some(0));
    assert_eq!(t.node_of_cpu(20), Some(1));
    assert_eq!(t.node_of_cpu(64), None);
}

#[test]
fn two_socket_devices_report_their_numa_nodes() {
    let t = two_socket();
    let dev = |name: &str, numa_node| Device {
        name: name.to_owned(),
        numa_node,
    };
    assert_eq!(
        t.net_devices(),
        [
            dev("eno1", Some(0)),
            dev("enp2s0", None), // numa_node is -1
            dev("ens1f0np0", Some(1)),
            dev("lo", None), // virtual: no device link at all
        ]
    );
    assert_eq!(t.rdma_devices(), [dev("mlx5_0", Some(1))]);
    assert_eq!(t.rdma_device("mlx5_0").and_then(|d| d.numa_node), Some(1));
    assert_eq!(t.net_device("ens1f0np0").and_then(|d| d.numa_node), Some(1));
    assert!(t.net_device("eth9").is_none());
}

#[test]
fn shards_go_on_the_nic_node_one_thread_per_core_before_siblings() {
    let t = two_socket();
    let nic_node = t.rdma_device("mlx5_0").and_then(|d| d.numa_node);
    assert_eq!(t.plan_shards(4, nic_node, None).unwrap(), [16, 17, 18, 19]);
    // 20 shards: all 16 physical cores of node 1 first, then their SMT siblings.
    let plan = t.plan_shards(20, nic_node, None).unwrap();
    assert_eq!(plan, [range(16, 31), range(48, 51)].concat());
    assert!(node_of_each(&t, &plan).iter().all(|&n| n == Some(1)));
}

#[test]
fn shards_spill_to_the_other_node_only_when_the_nic_node_is_full() {
    let t = two_socket();
    let plan = t.plan_shards(40, Some(1), None).unwrap();
    let nodes = node_of_each(&t, &plan);
    assert!(nodes[..32].iter().all(|&n| n == Some(1)), "{plan:?}");
    assert!(nodes[32..].iter().all(|&n| n == Some(0)), "{plan:?}");
    assert_eq!(plan[32..], range(0, 7));
    let mut distinct = plan.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 40, "a core was used twice: {plan:?}");
}

#[test]
fn without_a_preferred_node_shards_fill_the_first_node_physical_cores_first() {
    let t = two_socket();
    assert_eq!(t.plan_shards(3, None, None).unwrap(), [0, 1, 2]);
    assert_eq!(
        t.plan_shards(17, None, None).unwrap(),
        [range(0, 15), vec![32]].concat()
    );
}

#[test]
fn placement_honours_the_allowed_cores() {
    let t = two_socket();
    let allowed = [range(0, 7), vec![16, 48, 48]].concat();
    // On the NIC's node only 16 and its sibling 48 are allowed; both come before remote cores.
    assert_eq!(
        t.plan_shards(3, Some(1), Some(&allowed)).unwrap(),
        [16, 48, 0]
    );
}

#[test]
fn placement_errors_name_the_problem() {
    let t = two_socket();
    assert_eq!(t.plan_shards(0, None, None), Err(PlacementError::NoShards));
    let error = t.plan_shards(65, Some(1), None).unwrap_err();
    assert_eq!(
        error,
        PlacementError::NotEnoughCores {
            needed: 65,
            available: 64,
            cores: "0-63".to_owned()
        }
    );
    assert!(error.to_string().contains("65 shards"), "{error}");
    let error = t.plan_shards(1, Some(2), None).unwrap_err();
    assert_eq!(
        error,
        PlacementError::UnknownNode {
            node: 2,
            nodes: "0-1".to_owned()
        }
    );
    let error = t.plan_shards(1, None, Some(&[3, 70])).unwrap_err();
    assert_eq!(
        error,
        PlacementError::CoreNotOnline {
            core: 70,
            online: "0-63".to_owned()
        }
    );
    let error = t.plan_shards(3, None, Some(&[3, 3, 4])).unwrap_err();
    assert!(
        matches!(
            error,
            PlacementError::NotEnoughCores {
                needed: 3,
                available: 2,
                ..
            }
        ),
        "duplicates in the allowed list must not count twice: {error}"
    );
}

#[test]
fn this_vm_is_one_node_of_two_cpus_and_its_nic_node_is_unknown() {
    let t = vm();
    assert_eq!(t.online_cpus(), [0, 1]);
    assert_eq!(
        t.nodes(),
        [NumaNode {
            id: 0,
            cpus: vec![0, 1]
        }]
    );
    assert_eq!(t.smt_siblings(1), [1]);
    // virtio-net: the device link points at the virtio device, which has no numa_node file.
    let eth0 = t.net_device("eth0").expect("eth0 is in the fixture");
    assert_eq!(eth0.numa_node, None);
    assert_eq!(t.net_devices().len(), 4, "eth0, ifb0, ifb1, lo");
    assert!(
        t.rdma_devices().is_empty(),
        "no class/infiniband on this VM"
    );
    assert_eq!(t.plan_shards(2, eth0.numa_node, None).unwrap(), [0, 1]);
    assert!(matches!(
        t.plan_shards(3, None, None),
        Err(PlacementError::NotEnoughCores {
            needed: 3,
            available: 2,
            ..
        })
    ));
}

#[test]
fn a_machine_without_node_directories_is_one_node_holding_every_online_cpu() {
    let tree = Tree::new().file("devices/system/cpu/online", "0-3\n");
    let t = tree.read().unwrap();
    assert_eq!(
        t.nodes(),
        [NumaNode {
            id: 0,
            cpus: vec![0, 1, 2, 3]
        }]
    );
    assert_eq!(
        t.smt_siblings(2),
        [2],
        "no topology files: each CPU is its own core"
    );
    assert!(t.net_devices().is_empty());
}

#[test]
fn offline_cpus_are_left_out_of_nodes_and_sibling_lists() {
    let tree = Tree::new()
        .file("devices/system/cpu/online", "0-2\n")
        .file("devices/system/node/node0/cpulist", "0-3\n")
        .file(
            "devices/system/cpu/cpu1/topology/thread_siblings_list",
            "1,3\n",
        );
    let t = tree.read().unwrap();
    assert_eq!(
        t.nodes(),
        [NumaNode {
            id: 0,
            cpus: vec![0, 1, 2]
        }]
    );
    assert_eq!(t.smt_siblings(1), [1]);
    assert!(t.smt_siblings(3).is_empty());
}

#[test]
fn a_bad_cpulist_is_reported_with_its_file_and_text() {
    let tree = Tree::new()
        .file("devices/system/cpu/online", "0-3\n")
        .file("devices/system/node/node0/cpulist", "0-1\n")
        .file("devices/system/node/node1/cpulist", "2-x\n");
    let error = tree.read().unwrap_err();
    match &error {
        TopologyError::Cpulist { path, text, reason } => {
            assert!(
                path.ends_with("devices/system/node/node1/cpulist"),
                "{path:?}"
            );
            assert_eq!(text, "2-x\n");
            assert_eq!(
                *reason,
                CpulistError::Entry {
                    entry: "2-x".to_owned()
                }
            );
        }
        other => panic!("expected a cpulist error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("node1/cpulist") && message.contains("2-x"),
        "{message}"
    );
}

#[test]
fn a_bad_numa_node_is_reported_with_its_file_and_text() {
    let tree = Tree::new()
        .file("devices/system/cpu/online", "0\n")
        .file("class/net/eth0/device/numa_node", "zero\n");
    let error = tree.read().unwrap_err();
    assert!(
        matches!(&error, TopologyError::NumaNode { path, text }
            if path.ends_with("class/net/eth0/device/numa_node") && text == "zero\n"),
        "{error:?}"
    );
}

#[test]
fn a_tree_without_an_online_cpu_list_is_not_sysfs() {
    let tree = Tree::new().file("devices/system/node/node0/cpulist", "0\n");
    let error = tree.read().unwrap_err();
    assert!(
        matches!(&error, TopologyError::Read { path, .. } if path.ends_with("devices/system/cpu/online")),
        "{error:?}"
    );
    assert!(error.to_string().contains("sysfs root"), "{error}");
    let tree = Tree::new().file("devices/system/cpu/online", "\n");
    assert!(matches!(
        tree.read(),
        Err(TopologyError::NoOnlineCpus { .. })
    ));
}

#[test]
fn the_live_sysfs_of_this_machine_is_consistent() {
    // Whatever machine runs the tests: nodes partition the online CPUs and a full plan exists.
    let t = Topology::read(Path::new("/sys")).expect("/sys parses");
    let mut in_nodes: Vec<usize> = t.nodes().iter().flat_map(|n| n.cpus.clone()).collect();
    in_nodes.sort_unstable();
    assert_eq!(in_nodes, t.online_cpus());
    let plan = t.plan_shards(t.online_cpus().len(), None, None).unwrap();
    assert_eq!(plan.len(), t.online_cpus().len());
}
