//! A seed becomes a scenario: the cluster (3, 5 or 7 voters, learners, spare nodes for membership
//! changes, quorum sizes), the core's settings, the fault mix, the disks, the clients and how long
//! each phase lasts. Every choice is drawn from the seed, so a failing seed names its whole world.

use super::network::NetworkFaults;
use super::rng::Rng;
use super::workload::WorkloadConfig;
use crate::consensus::NodeId;

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

/// How often the fault injector picks each action (relative weights; 0 disables it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultWeights {
    pub heal: u32,
    pub partition: u32,
    pub isolate_leader: u32,
    pub one_way: u32,
    pub crash: u32,
    pub pause: u32,
    pub transfer: u32,
    pub membership: u32,
    pub slow_disk: u32,
    /// Cut the leader, alone or with one follower, from the rest: rapid leader churn with entries
    /// replicated to a minority (the figure-8 situation of Raft §5.4.2).
    pub churn: u32,
}

impl FaultWeights {
    pub fn total(&self) -> u32 {
        self.heal
            + self.partition
            + self.isolate_leader
            + self.one_way
            + self.crash
            + self.pause
            + self.transfer
            + self.membership
            + self.slow_disk
            + self.churn
    }
}

/// Everything a run is made of.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Nodes that start outside the cluster; membership changes may add them.
    pub spares: Vec<NodeId>,
    pub election_quorum: usize,
    pub replication_quorum: usize,
    pub election_timeout_min_ns: u64,
    pub election_timeout_max_ns: u64,
    pub heartbeat_ns: u64,
    pub max_clock_drift_ns: u64,
    pub tick_ns: u64,
    pub max_inflight_appends: usize,
    pub max_batch_entries: usize,
    pub pre_vote: bool,
    /// A node compacts its log after applying this many entries past its snapshot.
    pub compact_every: u64,
    pub max_log_entries: usize,
    pub network: NetworkFaults,
    /// Client ↔ node links: one-way delay bounds and loss.
    pub client_delay_max_ns: u64,
    pub client_drop_ppm: u32,
    pub disk_latency_ns: (u64, u64),
    pub slow_disk_latency_ns: (u64, u64),
    /// `memory` durability: a crash keeps only term and vote.
    pub memory_mode: bool,
    /// Instead of random faults, replay the figure-8 schedule of Raft §5.4.2 with random timing
    /// (see `World::figure8`).
    pub figure8: bool,
    pub faults: FaultWeights,
    pub nemesis_every_ns: (u64, u64),
    pub down_ns: (u64, u64),
    pub workload: WorkloadConfig,
    /// Faults run during `[0, fault_phase_ns)`; then everything heals and the cluster must make
    /// progress again before `fault_phase_ns + settle_ns` (liveness).
    pub fault_phase_ns: u64,
    pub settle_ns: u64,
    /// A run that processes more events than this fails ("event cap"): a flood is a bug.
    pub max_events: u64,
    /// Appends from a leader to a follower that granted it its ring travel as one-sided writes
    /// (`sim/ring.rs`); drawn last, so the other choices of a seed are those it had before.
    pub one_sided: bool,
}

impl Scenario {
    /// The mixed-fault scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_A0A0);
        let n_voters = rng.pick(&[3usize, 3, 5, 5, 7]);
        let n_learners = rng.below(3) as usize;
        let voters: Vec<NodeId> = (1..=n_voters as NodeId).collect();
        let learners: Vec<NodeId> =
            (n_voters as NodeId + 1..=(n_voters + n_learners) as NodeId).collect();
        let spares = vec![(n_voters + n_learners) as NodeId + 1];
        let (election_quorum, replication_quorum) = if rng.below(2) == 0 {
            (n_voters / 2 + 1, n_voters / 2 + 1)
        } else {
            let q1 = rng.range(n_voters as u64 / 2 + 1, n_voters as u64) as usize;
            let q2 = rng.range((n_voters - q1 + 1) as u64, n_voters as u64) as usize;
            (q1, q2)
        };
        let election_timeout_min_ns = rng.pick(&[100 * MS, 150 * MS]);
        let max_clock_drift_ns = rng.pick(&[MS, 5 * MS, 10 * MS, 20 * MS]);
        let memory_mode = rng.below(100) < 15;
        let lossy = rng.below(100) < 70;
        let network = NetworkFaults {
            drop_ppm: if lossy {
                rng.pick(&[0, 5_000, 20_000, 50_000])
            } else {
                0
            },
            duplicate_ppm: if lossy {
                rng.pick(&[0, 5_000, 20_000])
            } else {
                0
            },
            delay_min_ns: rng.range(50 * US, 500 * US),
            delay_jitter_ns: rng.pick(&[100 * US, MS, 5 * MS]),
            long_delay_ppm: if lossy {
                rng.pick(&[0, 1_000, 5_000])
            } else {
                0
            },
            long_delay_max_ns: 400 * MS,
        };
        // A third of the seeds are "churn" runs: the leader is cut off every few hundred
        // milliseconds, with small batches, so old-term entries sit on minorities while leaders
        // change and lease reads meet deposed leaders.
        let churn = rng.below(3) == 0;
        let faults = FaultWeights {
            heal: 4,
            partition: rng.pick(&[0, 2, 4]),
            isolate_leader: rng.pick(&[0, 2, 4]),
            one_way: rng.pick(&[0, 1, 3]),
            crash: rng.pick(&[0, 2, 4]),
            pause: rng.pick(&[0, 1, 3]),
            transfer: rng.pick(&[0, 1, 3]),
            membership: rng.pick(&[0, 1, 3]),
            slow_disk: rng.pick(&[0, 1, 2]),
            churn: if churn { 8 } else { rng.pick(&[0, 0, 2]) },
        };
        let figure8 = churn && rng.below(3) != 0;
        let workload = WorkloadConfig {
            // Figure-8 runs have a client with short timeouts (many unknown outcomes): fewer
            // clients keep the history checkable.
            clients: if figure8 { 2 } else { rng.range(2, 5) as usize },
            timeout_ns: 400 * MS,
            think_max_ns: rng.pick(&[2 * MS, 10 * MS, 30 * MS]),
            read_pct: 35,
            cas_pct: 40,
            lease_read_pct: rng.pick(&[0, 50, 90]),
            roaming_readers: if figure8 { 1 } else { rng.range(0, 2) as usize },
            sticky: figure8,
            sticky_timeout_ns: 40 * MS,
        };
        let max_batch_entries = if churn {
            rng.pick(&[1, 2])
        } else {
            rng.pick(&[1, 2, 4, 64])
        };
        let mut scenario = Self {
            seed,
            voters,
            learners,
            spares,
            election_quorum,
            replication_quorum,
            election_timeout_min_ns,
            election_timeout_max_ns: 2 * election_timeout_min_ns,
            heartbeat_ns: election_timeout_min_ns / 5,
            max_clock_drift_ns,
            tick_ns: rng.pick(&[MS, 2 * MS, 5 * MS]),
            max_inflight_appends: rng.pick(&[1, 2, 8]),
            max_batch_entries,
            pre_vote: rng.below(100) < 80,
            compact_every: rng.pick(&[16, 64, 256]),
            max_log_entries: 4096,
            network,
            client_delay_max_ns: 2 * MS,
            client_drop_ppm: if lossy { 5_000 } else { 0 },
            disk_latency_ns: (20 * US, 300 * US),
            slow_disk_latency_ns: (2 * MS, 40 * MS),
            memory_mode,
            figure8,
            faults,
            nemesis_every_ns: if churn {
                (50 * MS, 250 * MS)
            } else {
                (100 * MS, 600 * MS)
            },
            down_ns: (50 * MS, 800 * MS),
            workload,
            fault_phase_ns: 3_000 * MS,
            settle_ns: 2_000 * MS,
            max_events: 2_000_000,
            one_sided: false,
        };
        scenario.one_sided = rng.below(2) == 0;
        scenario
    }

    /// Every node the run creates: voters, learners, spares.
    pub fn all_nodes(&self) -> Vec<NodeId> {
        let mut all = self.voters.clone();
        all.extend(&self.learners);
        all.extend(&self.spares);
        all
    }

    /// A one-line summary for failure reports and traces.
    pub fn summary(&self) -> String {
        format!(
            "{} voters (Q1 {}, Q2 {}), {} learners, {} spare; election {}-{} ms, drift {} ms, tick {} ms; \
             window {}, batch {}, prevote {}, compact every {}; drop {}‰ dup {}‰ delay {}+{} us; \
             {} durability; figure-8 schedule {}; faults {:?}; {} clients + {} roaming readers, lease reads {}%; \
             one-sided ring writes {}",
            self.voters.len(),
            self.election_quorum,
            self.replication_quorum,
            self.learners.len(),
            self.spares.len(),
            self.election_timeout_min_ns / MS,
            self.election_timeout_max_ns / MS,
            self.max_clock_drift_ns / MS,
            self.tick_ns / MS,
            self.max_inflight_appends,
            self.max_batch_entries,
            self.pre_vote,
            self.compact_every,
            self.network.drop_ppm / 1000,
            self.network.duplicate_ppm / 1000,
            self.network.delay_min_ns / US,
            self.network.delay_jitter_ns / US,
            if self.memory_mode { "memory" } else { "fsync" },
            self.figure8,
            self.faults,
            self.workload.clients,
            self.workload.roaming_readers,
            self.workload.lease_read_pct,
            self.one_sided,
        )
    }
}
