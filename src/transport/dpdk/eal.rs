//! The DPDK Environment Abstraction Layer: initialised once per process from configuration.
//!
//! Why one place: `rte_eal_init` may run once per process, takes argv-style arguments, and fails
//! with an errno that says little on its own ("Cannot allocate memory" for missing hugepages, "No
//! such device" for a vdev no driver claims). [`Eal::init`] builds the arguments (a
//! `--file-prefix` per node so several processes share one host, lcores from the shard cores,
//! each vdev), checks what can be checked before EAL runs (hugepages reserved unless `--no-huge`,
//! vdev strings name a driver this DPDK ships), and turns a failure into one [`EalError`] naming
//! the cause and the fix.

use super::ffi;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::Mutex;

/// What EAL needs from the node's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalSpec {
    /// `--file-prefix`: distinct per process on one host (shared-memory files and the runtime dir).
    pub file_prefix: String,
    /// Cores the shards run on; the first is the main lcore. Empty: lcore 0 may float over every
    /// online CPU (`--lcores 0@(0-N)`), for hosts with more processes than cores.
    pub cores: Vec<usize>,
    /// `--vdev` arguments, e.g. `net_memif0,role=server,socket=/run/a.sock`.
    pub vdevs: Vec<String>,
    /// Passed through after ours (`--no-huge`, `-m 256`, `--no-pci`…).
    pub extra_args: Vec<String>,
}

/// Why EAL could not start. Each variant says the cause and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EalError {
    #[error(
        "DPDK EAL init failed: no hugepages are reserved (vm.nr_hugepages = 0) and the EAL \
         arguments do not include --no-huge; reserve some (echo 256 > /proc/sys/vm/nr_hugepages \
         and mount hugetlbfs) or add \"--no-huge\" to [dpdk] eal_args"
    )]
    NoHugepages,
    #[error(
        "DPDK EAL init failed: vdev {vdev:?} names driver {driver:?}, which this DPDK does not \
         have (network drivers: {known}); check [dpdk] vdevs"
    )]
    UnknownVdevDriver {
        vdev: String,
        driver: String,
        known: String,
    },
    #[error("DPDK EAL init failed: argument {arg:?} contains a NUL byte")]
    NulInArgument { arg: String },
    #[error("DPDK EAL init failed: {message} (errno {errno}) with arguments {args:?}; {hint}")]
    Init {
        errno: i32,
        message: String,
        args: Vec<String>,
        hint: &'static str,
    },
    #[error(
        "DPDK EAL is already initialised in this process with {current:?}; one process runs one \
         EAL (requested {requested:?})"
    )]
    AlreadyInitialised {
        current: Vec<String>,
        requested: Vec<String>,
    },
}

/// The process's EAL, once initialised. Holds the arguments it was started with.
#[derive(Debug, Clone)]
pub struct Eal {
    args: Vec<String>,
}

static EAL: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Where Debian's DPDK looks for poll-mode drivers (loaded at run time by EAL).
const PMD_DIRS: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/dpdk",
    "/usr/lib/aarch64-linux-gnu/dpdk",
];

impl EalSpec {
    /// The argv EAL gets (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![format!("--file-prefix={}", self.file_prefix)];
        if self.cores.is_empty() {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            args.push(format!("--lcores=0@(0-{})", cpus - 1));
        } else {
            let list: Vec<String> = self.cores.iter().map(|c| c.to_string()).collect();
            args.push(format!("-l{}", list.join(",")));
        }
        for vdev in &self.vdevs {
            args.push(format!("--vdev={vdev}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

impl Eal {
    /// Initialises EAL for this process (once; a second call with the same spec returns the same
    /// EAL, with another spec an error).
    pub fn init(spec: &EalSpec) -> Result<Eal, EalError> {
        let args = spec.args();
        let mut current = EAL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = current.as_ref() {
            if *current == args {
                return Ok(Eal { args });
            }
            return Err(EalError::AlreadyInitialised {
                current: current.clone(),
                requested: args,
            });
        }
        precheck(spec)?;
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("aurora").expect("no NUL"));
        for arg in &args {
            owned.push(
                CString::new(arg.as_str())
                    .map_err(|_| EalError::NulInArgument { arg: arg.clone() })?,
            );
        }
        // EAL keeps pointers into argv for the life of the process: leak the strings on purpose.
        let argv: &mut Vec<*mut libc::c_char> =
            Box::leak(Box::new(owned.into_iter().map(CString::into_raw).collect()));
        let argc = argv.len() as i32;
        // SAFETY: argv holds `argc` valid NUL-terminated strings that live forever (leaked above);
        // the mutex guarantees this is the process's only call.
        let rc = unsafe { ffi::shim_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let errno = -rc;
            return Err(EalError::Init {
                errno,
                message: strerror(errno),
                hint: hint(errno),
                args,
            });
        }
        *current = Some(args.clone());
        Ok(Eal { args })
    }

    /// The arguments EAL was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

/// DPDK's message for an errno (its own codes included).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::shim_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

fn hint(errno: i32) -> &'static str {
    match errno {
        libc::EACCES => "run as root or give the process access to /dev/hugepages and /dev/vfio",
        libc::ENOMEM => {
            "memory could not be reserved: reserve hugepages (vm.nr_hugepages), or pass \
             --no-huge with -m <MiB> in [dpdk] eal_args"
        }
        libc::ENODEV | libc::ENOTSUP | libc::ENOEXEC => {
            "a device could not be probed: check each [dpdk] vdevs string (driver name, key=value \
             arguments) against the driver's documentation"
        }
        libc::EINVAL => "an EAL argument is invalid: check [dpdk] eal_args and vdevs",
        libc::EALREADY => "EAL was initialised earlier in this process",
        _ => "see the EAL log lines above",
    }
}

fn precheck(spec: &EalSpec) -> Result<(), EalError> {
    let no_huge = spec.extra_args.iter().any(|a| a == "--no-huge");
    if !no_huge && hugepages_total() == 0 {
        return Err(EalError::NoHugepages);
    }
    let known = known_drivers();
    if known.is_empty() {
        return Ok(()); // an unusual layout: let EAL judge the vdevs
    }
    for vdev in &spec.vdevs {
        let name = vdev.split(',').next().unwrap_or_default();
        // A vdev is named driver + instance suffix: net_memif0, net_af_xdp1.
        let driver = name.trim_end_matches(|c: char| c.is_ascii_digit());
        if !known.iter().any(|k| k == driver) {
            return Err(EalError::UnknownVdevDriver {
                vdev: vdev.clone(),
                driver: driver.to_string(),
                known: known
                    .iter()
                    .filter(|k| k.starts_with("net_"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

fn hugepages_total() -> u64 {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    read("/proc/sys/vm/nr_hugepages")
        + read("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages")
}

/// `net_*` poll-mode drivers in Debian's pmds directory (`librte_net_memif.so` → `net_memif`).
fn known_drivers() -> Vec<String> {
    let mut known = Vec::new();
    for dir in PMD_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for pmds in entries.flatten() {
            let Ok(libs) = std::fs::read_dir(pmds.path()) else {
                continue;
            };
            for lib in libs.flatten() {
                let file = lib.file_name();
                let file = file.to_string_lossy();
                if let Some(name) = file
                    .strip_prefix("librte_")
                    .and_then(|f| f.strip_suffix(".so"))
                {
                    known.push(name.to_string());
                }
            }
        }
    }
    known.sort();
    known.dedup();
    known
}

/// Whether DPDK's run-time pieces look installed (for tests that skip nothing but fail loudly).
pub fn pmd_dir_present() -> bool {
    PMD_DIRS.iter().any(|d| Path::new(d).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_the_prefix_lcores_vdevs_and_pass_through_the_rest() {
        let spec = EalSpec {
            file_prefix: "aurora-1".into(),
            cores: vec![2, 3],
            vdevs: vec!["net_memif0,role=server".into()],
            extra_args: vec!["--no-huge".into(), "-m".into(), "256".into()],
        };
        assert_eq!(
            spec.args(),
            [
                "--file-prefix=aurora-1",
                "-l2,3",
                "--vdev=net_memif0,role=server",
                "--no-huge",
                "-m",
                "256"
            ]
        );
    }

    #[test]
    fn an_unknown_vdev_driver_is_named_before_eal_runs() {
        assert!(
            pmd_dir_present(),
            "feature dpdk needs DPDK's PMDs: hack/install-deps.sh"
        );
        let spec = EalSpec {
            file_prefix: "aurora-t".into(),
            cores: vec![],
            vdevs: vec!["net_bogus0,x=1".into()],
            extra_args: vec!["--no-huge".into()],
        };
        let err = precheck(&spec).unwrap_err();
        assert!(
            matches!(err, EalError::UnknownVdevDriver { ref driver, .. } if driver == "net_bogus")
        );
        assert!(err.to_string().contains("net_memif"), "{err}");
    }
}
