//! The machine's NUMA topology, read from sysfs, and shard placement on it.
//!
//! Placement is data read at start-up, not guessed (STYLE.md): shards go on the NUMA node of the
//! NIC or RDMA device they serve, so their buffers — first touched by the shard — sit next to the
//! device's DMA. The reader takes the sysfs root as a parameter so tests run it against fixture trees
//! (`tests/fixtures/sysfs/`) of a two-socket box and of the 2-core VM.
//!
//! Files read, relative to the root (normally `/sys`):
//! - `devices/system/cpu/online` — required;
//! - `devices/system/node/node*/cpulist` — a machine (or kernel) without `node*` directories is one
//!   node, 0, holding every online CPU;
//! - `devices/system/cpu/cpuN/topology/thread_siblings_list` — optional; without it a CPU is its own
//!   core;
//! - `class/net/IF/device/numa_node`, `class/infiniband/DEV/device/numa_node` — `-1` or a missing
//!   file means the node is unknown (virtual devices, firmware without proximity information).

use std::io::Read;
use std::path::{Path, PathBuf};

/// CPU numbers must be below this: the kernel's largest `NR_CPUS` (x86-64 `MAXSMP`).
pub const CPU_LIMIT: usize = 8192;
/// Bound on NUMA node directories and on devices per class read from sysfs.
const ENTRY_LIMIT: usize = 4096;
/// Bound on one sysfs attribute's size; real ones are at most a page.
const FILE_LEN_LIMIT: u64 = 64 * 1024;

/// What is wrong with a CPU list such as `"0-3,8-11"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpulistError {
    /// An entry is not a number or a `first-last` range of numbers.
    #[error("{entry:?} is not a CPU number or a range like 8-11")]
    Entry {
        /// The offending entry.
        entry: String,
    },
    /// A range whose end is below its start.
    #[error("range {first}-{last} runs backwards")]
    Backwards {
        /// Start of the range.
        first: usize,
        /// End of the range.
        last: usize,
    },
    /// A CPU number at or above [`CPU_LIMIT`].
    #[error("CPU {cpu} is beyond the largest supported CPU number ({max})", max = CPU_LIMIT - 1)]
    TooLarge {
        /// The offending number.
        cpu: usize,
    },
}

/// Parses a kernel CPU list (`"0-3,8-11\n"`; surrounding whitespace and an empty list allowed) into
/// sorted, distinct CPU numbers.
pub fn parse_cpulist(text: &str) -> Result<Vec<usize>, CpulistError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    // A bitmap, so repeated or overlapping ranges cost no more than CPU_LIMIT steps in total.
    let mut present = vec![false; CPU_LIMIT];
    for entry in text.split(',') {
        let entry = entry.trim();
        let bad = || CpulistError::Entry {
            entry: entry.to_owned(),
        };
        let (first, last) = match entry.split_once('-') {
            Some((first, last)) => (
                parse_cpu(first).ok_or_else(bad)?,
                parse_cpu(last).ok_or_else(bad)?,
            ),
            None => {
                let cpu = parse_cpu(entry).ok_or_else(bad)?;
                (cpu, cpu)
            }
        };
        if last < first {
            return Err(CpulistError::Backwards { first, last });
        }
        if last >= CPU_LIMIT {
            return Err(CpulistError::TooLarge { cpu: last });
        }
        present[first..=last].fill(true);
    }
    Ok((0..CPU_LIMIT).filter(|&cpu| present[cpu]).collect())
}

/// A decimal CPU number without sign or spaces (what `usize::from_str` would also accept with `+`).
fn parse_cpu(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only; too many of them is a number beyond the limit.
    Some(text.parse().unwrap_or(usize::MAX))
}

/// Formats sorted CPU numbers the way the kernel does (`0-3,8-11`), for messages.
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let first = cpus[i];
        let mut last = first;
        while i + 1 < cpus.len() && cpus[i + 1] == last + 1 {
            i += 1;
            last = cpus[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            out.push_str(&first.to_string());
        } else {
            out.push_str(&format!("{first}-{last}"));
        }
        i += 1;
    }
    out
}

/// Why the topology could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}; is the sysfs root right (normally /sys)?")]
    Read {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file too large to be a sysfs attribute.
    #[error("{path} is longer than {limit} bytes, which no sysfs attribute is")]
    TooLong {
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A CPU list file holds something else.
    #[error("bad CPU list in {path}: {text:?}: {reason}")]
    Cpulist {
        /// The file.
        path: PathBuf,
        /// Its content.
        text: String,
        /// What is wrong.
        reason: CpulistError,
    },
    /// A `numa_node` file holds something else.
    #[error("bad NUMA node in {path}: {text:?}; expected a node number or -1")]
    NumaNode {
        /// The file.
        path: PathBuf,
        /// Its content.
        text: String,
    },
    /// The online CPU list is empty.
    #[error("{path} lists no online CPU")]
    NoOnlineCpus {
        /// The file.
        path: PathBuf,
    },
    /// More directory entries than any machine has.
    #[error("{path} has more than {limit} entries; not a sysfs tree")]
    TooManyEntries {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

/// Why no shard placement exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Zero shards asked for.
    #[error("shard count is 0; configure at least one shard")]
    NoShards,
    /// The preferred node does not exist.
    #[error("NUMA node {node} does not exist (nodes: {nodes}); check the device's numa_node")]
    UnknownNode {
        /// The node asked for.
        node: u32,
        /// The nodes there are.
        nodes: String,
    },
    /// An allowed core is not an online CPU.
    #[error("core {core} is not an online CPU (online: {online}); fix the core list")]
    CoreNotOnline {
        /// The core.
        core: usize,
        /// The online CPUs.
        online: String,
    },
    /// Fewer usable cores than shards.
    #[error(
        "{needed} shards need {needed} distinct cores but only {available} are usable ({cores}); \
         lower the shard count or allow more cores"
    )]
    NotEnoughCores {
        /// Shards asked for.
        needed: usize,
        /// Usable cores.
        available: usize,
        /// The usable cores.
        cores: String,
    },
}

/// One NUMA node and its online CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaNode {
    /// The node number (`nodeN`).
    pub id: u32,
    /// Its online CPUs, sorted.
    pub cpus: Vec<usize>,
}

/// A network or RDMA device and the NUMA node its PCI function is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Interface (`class/net`) or RDMA device (`class/infiniband`) name.
    pub name: String,
    /// The node, or `None` when sysfs does not say (`-1` or no `numa_node` file).
    pub numa_node: Option<u32>,
}

/// The topology of one machine as read from sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    online_cpus: Vec<usize>,
    nodes: Vec<NumaNode>,
    /// Per online CPU (same order as `online_cpus`): its online SMT siblings, itself included.
    siblings: Vec<Vec<usize>>,
    net_devices: Vec<Device>,
    rdma_devices: Vec<Device>,
}

impl Topology {
    /// Reads the topology under `sysfs_root` (`/sys` on a live machine).
    pub fn read(sysfs_root: &Path) -> Result<Self, TopologyError> {
        let online_path = sysfs_root.join("devices/system/cpu/online");
        let online_cpus = read_cpulist(&online_path)?;
        if online_cpus.is_empty() {
            return Err(TopologyError::NoOnlineCpus { path: online_path });
        }

        let mut nodes = Vec::new();
        let node_dir = sysfs_root.join("devices/system/node");
        for (name, path) in list_dir(&node_dir)? {
            let Some(id) = name
                .strip_prefix("node")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue; // online, possible, has_cpu, power, ...
            };
            let cpus = read_cpulist(&path.join("cpulist"))?
                .into_iter()
                .filter(|cpu| online_cpus.binary_search(cpu).is_ok())
                .collect();
            nodes.push(NumaNode { id, cpus });
        }
        if nodes.is_empty() {
            nodes.push(NumaNode {
                id: 0,
                cpus: online_cpus.clone(),
            });
        }
        nodes.sort_by_key(|node| node.id);

        let mut siblings = Vec::with_capacity(online_cpus.len());
        for &cpu in &online_cpus {
            let path = sysfs_root.join(format!(
                "devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            ));
            let mut list = match read_optional(&path)? {
                Some(text) => parse_cpulist_at(&path, &text)?,
                None => vec![cpu],
            };
            list.retain(|sibling| online_cpus.binary_search(sibling).is_ok());
            if !list.contains(&cpu) {
                list.push(cpu);
                list.sort_unstable();
            }
            siblings.push(list);
        }

        Ok(Self {
            net_devices: read_devices(&sysfs_root.join("class/net"))?,
            rdma_devices: read_devices(&sysfs_root.join("class/infiniband"))?,
            online_cpus,
            nodes,
            siblings,
        })
    }

    /// Online CPUs, sorted.
    pub fn online_cpus(&self) -> &[usize] {
        &self.online_cpus
    }

    /// NUMA nodes, sorted by id.
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// The node holding `cpu`, if it is online and in a node.
    pub fn node_of_cpu(&self, cpu: usize) -> Option<u32> {
        self.nodes
            .iter()
            .find(|node| node.cpus.binary_search(&cpu).is_ok())
            .map(|node| node.id)
    }

    /// The online SMT siblings of `cpu` (itself included); empty if `cpu` is not online.
    pub fn smt_siblings(&self, cpu: usize) -> &[usize] {
        match self.online_cpus.binary_search(&cpu) {
            Ok(i) => &self.siblings[i],
            Err(_) => &[],
        }
    }

    /// Network interfaces (`class/net`), sorted by name.
    pub fn net_devices(&self) -> &[Device] {
        &self.net_devices
    }

    /// RDMA devices (`class/infiniband`), sorted by name.
    pub fn rdma_devices(&self) -> &[Device] {
        &self.rdma_devices
    }

    /// The network interface called `name`.
    pub fn net_device(&self, name: &str) -> Option<&Device> {
        self.net_devices.iter().find(|device| device.name == name)
    }

    /// The RDMA device called `name`.
    pub fn rdma_device(&self, name: &str) -> Option<&Device> {
        self.rdma_devices.iter().find(|device| device.name == name)
    }

    /// Picks `count` distinct cores for shards, from `allowed` (all online CPUs when `None`).
    ///
    /// Order of preference: cores on `preferred_node` (the NIC's), then the other nodes one at a
    /// time; within a node, one hardware thread per physical core before any SMT sibling (two
    /// spinning shards on one core halve each other), then ascending CPU number. Spilling off the
    /// preferred node is allowed and logged; too few cores is an error.
    pub fn plan_shards(
        &self,
        count: usize,
        preferred_node: Option<u32>,
        allowed: Option<&[usize]>,
    ) -> Result<Vec<usize>, PlacementError> {
        if count == 0 {
            return Err(PlacementError::NoShards);
        }
        if let Some(node) = preferred_node {
            if !self.nodes.iter().any(|n| n.id == node) {
                let ids: Vec<usize> = self.nodes.iter().map(|n| n.id as usize).collect();
                return Err(PlacementError::UnknownNode {
                    node,
                    nodes: format_cpulist(&ids),
                });
            }
        }
        let mut candidates = match allowed {
            None => self.online_cpus.clone(),
            Some(list) => {
                let mut list = list.to_vec();
                list.sort_unstable();
                list.dedup();
                if let Some(&core) = list
                    .iter()
                    .find(|c| self.online_cpus.binary_search(c).is_err())
                {
                    return Err(PlacementError::CoreNotOnline {
                        core,
                        online: format_cpulist(&self.online_cpus),
                    });
                }
                list
            }
        };
        if candidates.len() < count {
            return Err(PlacementError::NotEnoughCores {
                needed: count,
                available: candidates.len(),
                cores: format_cpulist(&candidates),
            });
        }
        // Sort key: (off the preferred node, node, SMT rank within the allowed set, CPU number).
        let mut ranked: Vec<(bool, u32, usize, usize)> = candidates
            .iter()
            .map(|&cpu| {
                let node = self.node_of_cpu(cpu);
                let off_preferred = preferred_node.is_some() && node != preferred_node;
                // CPUs outside every node (possible only with odd sysfs) sort last.
                let node_order = node.unwrap_or(u32::MAX);
                let smt_rank = self
                    .smt_siblings(cpu)
                    .iter()
                    .filter(|&&sibling| sibling < cpu && candidates.binary_search(&sibling).is_ok())
                    .count();
                (off_preferred, node_order, smt_rank, cpu)
            })
            .collect();
        ranked.sort_unstable();
        ranked.truncate(count);
        let spilled = ranked.iter().filter(|entry| entry.0).count();
        candidates = ranked.iter().map(|&(_, _, _, cpu)| cpu).collect();
        if spilled > 0 {
            tracing::warn!(
                spilled,
                preferred_node,
                cores = %format_cpulist(&candidates),
                "not enough allowed cores on the device's NUMA node; some shards run remote"
            );
        }
        assert_eq!(candidates.len(), count);
        debug_assert!(
            candidates
                .iter()
                .enumerate()
                .all(|(i, c)| !candidates[..i].contains(c)),
            "a core was planned twice"
        );
        Ok(candidates)
    }
}

/// Reads every `NAME/device/numa_node` under a `class/*` directory (missing directory: none).
fn read_devices(class_dir: &Path) -> Result<Vec<Device>, TopologyError> {
    let mut devices = Vec::new();
    for (name, path) in list_dir(class_dir)? {
        let numa_path = path.join("device/numa_node");
        let numa_node = match read_optional(&numa_path)? {
            None => None,
            Some(text) => parse_numa_node(&text).ok_or(TopologyError::NumaNode {
                path: numa_path,
                text,
            })?,
        };
        devices.push(Device { name, numa_node });
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

/// `"-1"` is unknown; a non-negative number is a node; anything else is an error (`None`).
fn parse_numa_node(text: &str) -> Option<Option<u32>> {
    match text.trim() {
        "-1" => Some(None),
        number => number.parse::<u32>().ok().map(Some),
    }
}

/// Entries of `dir` as (UTF-8 name, path), sorted by name; a missing directory has none. Names
/// that are not UTF-8 are skipped: no kernel object named here has one.
fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, TopologyError> {
    let read_error = |source| TopologyError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(read_error(error)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        if out.len() == ENTRY_LIMIT {
            return Err(TopologyError::TooManyEntries {
                path: dir.to_owned(),
                limit: ENTRY_LIMIT,
            });
        }
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn read_cpulist(path: &Path) -> Result<Vec<usize>, TopologyError> {
    let text = read_optional(path)?.ok_or_else(|| TopologyError::Read {
        path: path.to_owned(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    parse_cpulist_at(path, &text)
}

fn parse_cpulist_at(path: &Path, text: &str) -> Result<Vec<usize>, TopologyError> {
    parse_cpulist(text).map_err(|reason| TopologyError::Cpulist {
        path: path.to_owned(),
        text: text.to_owned(),
        reason,
    })
}

/// A small text file's content, or `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, TopologyError> {
    let read_error = |source| TopologyError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(error)),
    };
    let mut text = String::new();
    file.take(FILE_LEN_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > FILE_LEN_LIMIT {
        return Err(TopologyError::TooLong {
            path: path.to_owned(),
            limit: FILE_LEN_LIMIT,
        });
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse_ranges_singles_whitespace_and_empty() {
        assert_eq!(
            parse_cpulist("0-3,8-11\n").unwrap(),
            [0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!(parse_cpulist(" 5 ").unwrap(), [5]);
        assert_eq!(parse_cpulist("0-1, 4 ,2").unwrap(), [0, 1, 2, 4]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_cpulist("\n").unwrap(), Vec::<usize>::new());
        assert_eq!(
            parse_cpulist("3,1-3").unwrap(),
            [1, 2, 3],
            "overlaps are merged"
        );
    }

    #[test]
    fn malformed_cpulists_are_rejected_with_the_offending_entry() {
        for (text, entry) in [
            ("0-", "0-"),
            ("a", "a"),
            ("1,,2", ""),
            ("0-31:2/8", "0-31:2/8"),
            ("-1", "-1"),
            ("+3", "+3"),
        ] {
            assert_eq!(
                parse_cpulist(text),
                Err(CpulistError::Entry {
                    entry: entry.to_owned()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_cpulist("7-3"),
            Err(CpulistError::Backwards { first: 7, last: 3 })
        );
        assert_eq!(
            parse_cpulist("0-8192"),
            Err(CpulistError::TooLarge { cpu: 8192 })
        );
        assert_eq!(
            parse_cpulist("99999999999999999999999"),
            Err(CpulistError::TooLarge { cpu: usize::MAX })
        );
    }

    #[test]
    fn cpulists_format_back_to_kernel_form() {
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8, 9, 10, 11]), "0-3,8-11");
        assert_eq!(format_cpulist(&[1, 3, 4]), "1,3-4");
        assert_eq!(format_cpulist(&[]), "");
        let cpus = parse_cpulist("0-15,32-47").unwrap();
        assert_eq!(format_cpulist(&cpus), "0-15,32-47");
    }

    #[test]
    fn numa_node_values() {
        assert_eq!(parse_numa_node("1\n"), Some(Some(1)));
        assert_eq!(parse_numa_node("-1\n"), Some(None));
        assert_eq!(parse_numa_node("-2"), None);
        assert_eq!(parse_numa_node("one"), None);
        assert_eq!(parse_numa_node(""), None);
    }
}
