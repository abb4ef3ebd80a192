//! Each validation rule, the override layers and their precedence, and the messages users see.

use std::io::Write;
use std::path::Path;

use aurora::config::{self, Config, ConfigErrors, Origin, Problem, QuorumError, Role};

/// A valid three-voter node file; tests change one thing in it.
const BASE: &str = r#"
cluster_id = 42
node_id = 1
secret = "0123456789abcdef0123456789abcdef"
data_dir = "/tmp/aurora-test"

[[members]]
id = 1
peer_addr = "127.0.0.1:7001"
client_addr = "127.0.0.1:7002"
admin_addr = "127.0.0.1:7003"

[[members]]
id = 2
peer_addr = "127.0.0.1:7011"
client_addr = "127.0.0.1:7012"
admin_addr = "127.0.0.1:7013"

[[members]]
id = 3
peer_addr = "127.0.0.1:7021"
client_addr = "127.0.0.1:7022"
admin_addr = "127.0.0.1:7023"
"#;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn flags(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn parse_with(text: &str, vars: &[(&str, &str)], args: &[&str]) -> Result<Config, ConfigErrors> {
    config::parse(text, Path::new("node.toml"), env(vars), flags(args))
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_with(text, &[], &[])
}

/// The single error `text` must produce, as the user reads it.
fn only_error(result: Result<Config, ConfigErrors>) -> String {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(ConfigErrors(errors)) => {
            assert_eq!(errors.len(), 1, "expected one error: {errors:#?}");
            errors[0].to_string()
        }
    }
}

fn member(id: u64, role: &str, port: u16) -> String {
    format!(
        "\n[[members]]\nid = {id}\nrole = \"{role}\"\npeer_addr = \"127.0.0.1:{}\"\n\
         client_addr = \"127.0.0.1:{}\"\nadmin_addr = \"127.0.0.1:{}\"\n",
        port,
        port + 1,
        port + 2
    )
}

#[test]
fn base_file_is_valid_with_majority_quorums() {
    let config = parse(BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.quorum.voters(), 3);
    assert_eq!(
        (config.quorum.election(), config.quorum.replication()),
        (2, 2)
    );
    assert_eq!(config.this_member().client_addr.port(), 7002);
}

#[test]
fn quorum_rule_reaches_the_user_unchanged_with_file_and_key() {
    let text = format!(
        "{BASE}{}{}\n[quorum]\nelection_quorum = 2\nreplication_quorum = 2\n",
        member(4, "voter", 7031),
        member(5, "voter", 7041)
    );
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: quorum: replication_quorum + election_quorum must exceed voters (2 + 2 <= 5); \
         raise one of them"
    );
}

#[test]
fn minority_election_quorum_is_rejected_at_its_key() {
    let text = format!(
        "{BASE}{}\n[quorum]\nelection_quorum = 2\nreplication_quorum = 3\n",
        member(4, "voter", 7031)
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0[0].key, "quorum.election_quorum");
    assert_eq!(
        err.0[0].problem,
        Problem::Quorum(QuorumError::SplitElection {
            election: 2,
            voters: 4
        })
    );
}

#[test]
fn flexible_quorums_are_accepted() {
    let text = format!(
        "{BASE}{}{}\n[quorum]\nelection_quorum = 4\nreplication_quorum = 2\n",
        member(4, "voter", 7031),
        member(5, "voter", 7041)
    );
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.quorum.lease(), 2);
}

#[test]
fn learners_never_count_as_voters() {
    // Counting the two learners would make five voters, and 2 + 2 <= 5 would be rejected.
    let text = format!(
        "{BASE}{}{}\n[quorum]\nelection_quorum = 2\nreplication_quorum = 2\n",
        member(4, "learner", 7031),
        member(5, "learner", 7041)
    );
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.quorum.voters(), 3);
    assert_eq!(
        config
            .members
            .iter()
            .filter(|m| m.role == Role::Learner)
            .count(),
        2
    );
}

#[test]
fn more_than_seven_voters_is_rejected() {
    let extra: String = (4..=8)
        .map(|id| member(id, "voter", 7000 + 10 * id as u16))
        .collect();
    assert_eq!(
        only_error(parse(&format!("{BASE}{extra}"))),
        "node.toml: members: voters must be between 1 and 7 (got 8)"
    );
}

#[test]
fn a_cluster_of_learners_only_is_rejected() {
    let mut text = BASE.to_owned();
    for id in 1..=3 {
        text = text.replace(
            &format!("\nid = {id}\n"),
            &format!("\nid = {id}\nrole = \"learner\"\n"),
        );
    }
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: members: voters must be between 1 and 7 (got 0)"
    );
}

#[test]
fn duplicate_node_ids_are_rejected() {
    let text = BASE.replace("\nid = 3\n", "\nid = 2\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: members[2].id: node id 2 is used by members[1] and members[2]; every member \
         needs its own id"
    );
}

#[test]
fn duplicate_addresses_are_rejected() {
    let text = BASE.replace("127.0.0.1:7013", "127.0.0.1:7001");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: members[1].admin_addr: address 127.0.0.1:7001 is also members[0].peer_addr; \
         every peer, client and admin address must be distinct"
    );
}

#[test]
fn node_id_must_be_a_member() {
    let text = BASE.replace("node_id = 1", "node_id = 9");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: node_id: node_id 9 is not among the members (ids: [1, 2, 3]); add a [[members]] \
         entry for this node or fix node_id"
    );
}

#[test]
fn zero_ids_are_rejected() {
    let err = parse(&BASE.replace("cluster_id = 42", "cluster_id = 0")).unwrap_err();
    assert_eq!(err.0[0].problem, Problem::ZeroClusterId);
    let err = parse(&BASE.replace("\nid = 3\n", "\nid = 0\n")).unwrap_err();
    assert_eq!(err.0[0].key, "members[2].id");
    assert_eq!(err.0[0].problem, Problem::ZeroNodeId);
}

#[test]
fn bad_and_portless_addresses_are_rejected() {
    let err = only_error(parse(&BASE.replace("127.0.0.1:7002", "node1:7002")));
    assert_eq!(
        err,
        "node.toml: members[0].client_addr: \"node1:7002\" is not an IP:port socket address \
         (invalid socket address syntax); write it like \"10.0.0.1:7001\" (names are not resolved: \
         fabrics are addressed by IP)"
    );
    let err = parse(&BASE.replace("127.0.0.1:7002", "127.0.0.1:0")).unwrap_err();
    assert!(
        matches!(err.0[0].problem, Problem::ZeroPort { .. }),
        "{err}"
    );
}

#[test]
fn election_timeout_must_be_twice_the_heartbeat() {
    let text = format!(
        "{BASE}\n[timing]\nheartbeat_interval_ms = 50\nelection_timeout_min_ms = 80\n\
         election_timeout_max_ms = 160\n"
    );
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: timing.election_timeout_min_ms: election_timeout_min_ms (80) must be at least \
         twice heartbeat_interval_ms (50), or a single late heartbeat starts an election; raise \
         election_timeout_min_ms to 100 or more"
    );
}

#[test]
fn election_timeout_range_must_not_be_empty() {
    let text =
        format!("{BASE}\n[timing]\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 300\n");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0[0].key, "timing.election_timeout_max_ms");
    assert_eq!(
        err.0[0].problem,
        Problem::ElectionRangeEmpty {
            min_ms: 300,
            max_ms: 300
        }
    );
}

#[test]
fn clock_drift_must_leave_a_lease_longer_than_a_heartbeat() {
    let text = format!(
        "{BASE}\n[timing]\nheartbeat_interval_ms = 20\nelection_timeout_min_ms = 40\n\
         election_timeout_max_ms = 80\nmax_clock_drift_ppm = 400000\n"
    );
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: timing.max_clock_drift_ppm: max_clock_drift_ppm = 400000 leaves a leader lease \
         of 17 ms (election_timeout_min_ms × (1 − drift) / (1 + drift)), not longer than one \
         heartbeat_interval_ms (20): the leader renews its lease once per heartbeat, so it would \
         never hold one and every read would need a quorum round trip; lower max_clock_drift_ppm \
         or raise election_timeout_min_ms"
    );
    let fine = text.replace("400000", "300000");
    assert_eq!(parse(&fine).map(|c| c.timing.lease_ms()).ok(), Some(21));
}

#[test]
fn request_timeout_must_outlive_an_election() {
    let text = format!("{BASE}\n[timing]\nrequest_timeout_ms = 100\n");
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(
            err.0[0].problem,
            Problem::RequestTimeoutTooShort {
                request_ms: 100,
                election_ms: 400
            }
        ),
        "{err}"
    );
}

#[test]
fn fabric_transport_needs_its_cargo_feature() {
    let text = format!("transport = \"rdma\"\n{BASE}\n[rdma]\ndevice = \"rxe0\"\n");
    let result = parse(&text);
    if cfg!(feature = "rdma") {
        assert!(result.is_ok(), "{:?}", result.err());
    } else {
        assert_eq!(
            only_error(result),
            "node.toml: transport: transport \"rdma\" is not in this build; rebuild with `cargo \
             build --release --features rdma`, or choose transport = \"tcp_uring\""
        );
    }
}

#[test]
fn fabric_transport_needs_its_section() {
    let err = parse_with(BASE, &[], &["transport=dpdk"]).unwrap_err();
    assert!(
        err.0.iter().any(|e| e.key == "dpdk"
            && matches!(
                e.problem,
                Problem::TransportSectionMissing {
                    section: "dpdk",
                    ..
                }
            )),
        "{err}"
    );
}

#[test]
fn transport_sections_are_validated_only_when_chosen() {
    // An unusable [rdma] section is ignored while the transport is tcp_uring …
    let text = format!("{BASE}\n[rdma]\ndevice = \"\"\ngid_index = 999\n");
    assert!(parse(&text).is_ok());
    // … and reported key by key once rdma is chosen.
    let err = parse_with(&text, &[], &["transport=rdma"]).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert!(
        keys.contains(&"rdma.device") && keys.contains(&"rdma.gid_index"),
        "{err}"
    );
}

#[test]
fn memory_durability_with_one_voter_needs_explicit_consent() {
    let single = r#"
cluster_id = 42
node_id = 1
secret = "0123456789abcdef0123456789abcdef"
data_dir = "/tmp/aurora-test"
durability = "memory"

[[members]]
id = 1
peer_addr = "127.0.0.1:7001"
client_addr = "127.0.0.1:7002"
admin_addr = "127.0.0.1:7003"
"#;
    assert_eq!(
        only_error(parse(single)),
        "node.toml: durability: durability = \"memory\" with a single voter loses every acknowledged \
         write when that node crashes; add voters, use durability = \"fsync\", or set \
         allow_single_node_memory = true if that is really what you want (benchmarks, throw-away \
         tests)"
    );
    let allowed = single.replace("durability", "allow_single_node_memory = true\ndurability");
    assert!(parse(&allowed).is_ok());
    // Three voters in memory mode survive one crash: no consent needed.
    assert!(parse(&BASE.replace("data_dir", "durability = \"memory\"\ndata_dir")).is_ok());
}

#[test]
fn zero_and_absurd_limits_are_rejected() {
    let text = format!("{BASE}\n[limits]\nmax_key_bytes = 0\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: limits.max_key_bytes: 0 is out of range: must be between 1 and 65536 (keys are \
         names, not payloads)"
    );
    let text = format!("{BASE}\n[limits]\npipeline_window = 1000000\n");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0[0].key, "limits.pipeline_window");
}

#[test]
fn frame_must_hold_the_largest_entry() {
    let text = format!("{BASE}\n[limits]\nmax_value_bytes = 8388608\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: limits.max_frame_bytes: max_frame_bytes (4194304) cannot hold one entry of the \
         largest key and value (8396800 bytes with 4096 bytes of headers); raise max_frame_bytes or \
         lower max_key_bytes / max_value_bytes"
    );
}

#[test]
fn more_shards_than_listed_cores_is_rejected() {
    let text = format!("{BASE}\n[runtime]\nshards = 3\ncores = [2, 3]\npin = true\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: runtime.shards: 3 shards but only 2 cores listed; list a core per shard, or \
         empty `cores` to let the topology choose"
    );
    let text = format!("{BASE}\n[runtime]\nshards = 2\ncores = [2, 2]\n");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0[0].problem, Problem::DuplicateCore { core: 2 });
}

#[test]
fn secret_must_be_given_exactly_once_and_long_enough() {
    let neither = BASE.replace("secret = \"0123456789abcdef0123456789abcdef\"\n", "");
    assert_eq!(
        only_error(parse(&neither)),
        "node.toml: secret_file: neither secret_file nor secret is set; set secret_file to a file \
         holding the cluster secret (at least 32 bytes), or secret for development"
    );
    let both = BASE.replace("data_dir", "secret_file = \"/etc/aurora/s\"\ndata_dir");
    assert_eq!(parse(&both).unwrap_err().0[0].problem, Problem::SecretTwice);
    let short = BASE.replace("0123456789abcdef0123456789abcdef", "hunter2");
    assert_eq!(
        only_error(parse(&short)),
        "node.toml: secret: the cluster secret is 7 bytes; it must be at least 32 (e.g. `head -c 32 \
         /dev/urandom | base64`)"
    );
}

#[test]
fn secret_file_is_read_relative_to_the_config_and_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_path = dir.path().join("cluster.secret");
    let mut file = std::fs::File::create(&secret_path).expect("create secret");
    writeln!(file, "abcdefghijklmnopqrstuvwxyz0123456789").expect("write secret");
    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = BASE.replace(
        "secret = \"0123456789abcdef0123456789abcdef\"",
        "secret_file = \"cluster.secret\"",
    );
    let node_file = dir.path().join("node.toml");
    let config =
        config::parse(&text, &node_file, Vec::new(), Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.secret.as_bytes(),
        b"abcdefghijklmnopqrstuvwxyz0123456789",
        "read from beside the config file, trailing newline dropped"
    );

    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = config::parse(&text, &node_file, Vec::new(), Vec::new()).unwrap_err();
    assert_eq!(
        err.0[0].problem,
        Problem::SecretExposed {
            path: secret_path,
            mode: 0o644
        }
    );
}

#[test]
fn relative_data_dir_is_resolved_against_the_config_file() {
    let text = BASE.replace("/tmp/aurora-test", "data/node1");
    let config = config::parse(
        &text,
        Path::new("/etc/aurora/node.toml"),
        Vec::new(),
        Vec::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.data_dir, Path::new("/etc/aurora/data/node1"));
}

#[test]
fn unknown_key_in_the_file_is_named_with_the_closest_valid_key() {
    let text = format!("{BASE}\n[timing]\nheartbeat_interval = 5\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: timing.heartbeat_interval: unknown key; did you mean \
         timing.heartbeat_interval_ms?"
    );
    let text = BASE.replace(
        "peer_addr = \"127.0.0.1:7011\"",
        "peer_adr = \"127.0.0.1:7011\"",
    );
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: members[1].peer_adr: unknown key; did you mean members[1].peer_addr?"
    );
}

#[test]
fn unknown_key_with_no_close_match_lists_the_valid_ones() {
    let text = format!("{BASE}\n[storage]\nfrobnicate = true\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: storage.frobnicate: unknown key; valid keys here: snapshot_every_entries, \
         snapshots_kept, wal_segment_bytes"
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let text = format!("{BASE}\n[timing]\nheartbeat = 5\nelection_min_ms = 9\n");
    let err = parse(&text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["timing.election_min_ms", "timing.heartbeat"]);
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let text = format!("{BASE}\n[timing]\nheartbeat_interval_ms = 20\n");
    let file_only = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file_only.timing.heartbeat_interval_ms, 20);

    let vars = [("AURORA_TIMING__HEARTBEAT_INTERVAL_MS", "10")];
    let from_env = parse_with(&text, &vars, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_env.timing.heartbeat_interval_ms, 10);

    let from_flag = parse_with(&text, &vars, &["timing.heartbeat_interval_ms=5"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_flag.timing.heartbeat_interval_ms, 5);
}

#[test]
fn overrides_reach_array_elements_and_absent_sections() {
    let config = parse_with(
        BASE,
        &[("AURORA_MEMBERS__2__CLIENT_ADDR", "127.0.0.1:9999")],
        &["runtime.cores=[4, 5]", "members[0].role=voter"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.members[2].client_addr.port(), 9999);
    assert_eq!(config.runtime.cores, [4, 5]);

    let err = parse_with(
        BASE,
        &[("AURORA_MEMBERS__3__CLIENT_ADDR", "127.0.0.1:9999")],
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable AURORA_MEMBERS__3__CLIENT_ADDR: members[3].client_addr: index 3 is out \
         of range: members has 3 entries; overrides change entries the file has, they do not add \
         new ones"
    );
}

#[test]
fn environment_variable_naming_no_key_is_an_error_with_a_suggestion() {
    let err = parse_with(BASE, &[("AURORA_TIMING__HEARTBEAT_INTERVAL", "5")], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable AURORA_TIMING__HEARTBEAT_INTERVAL: timing.heartbeat_interval: unknown \
         key; did you mean AURORA_TIMING__HEARTBEAT_INTERVAL_MS?"
    );
    // A key in the wrong section is found by its name.
    let err = parse_with(BASE, &[("AURORA_HEARTBEAT_INTERVAL_MS", "5")], &[]).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("did you mean AURORA_TIMING__HEARTBEAT_INTERVAL_MS?"),
        "{err}"
    );
}

#[test]
fn flag_naming_no_key_is_an_error_with_a_suggestion() {
    let err = parse_with(BASE, &[], &["members[1].peer_adr=127.0.0.1:1"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flag --set members[1].peer_adr=127.0.0.1:1: members[1].peer_adr: unknown key; did you mean \
         members[1].peer_addr?"
    );
    let err = parse_with(BASE, &[], &["timing.heartbeat_interval_ms"]).unwrap_err();
    assert!(matches!(err.0[0].problem, Problem::BadOverride(_)), "{err}");
}

#[test]
fn unrelated_and_reserved_environment_variables_are_ignored() {
    let vars = [
        ("PATH", "/usr/bin"),
        ("AURORA_CONFIG", "/etc/aurora/node.toml"),
        ("AURORA_LOG", "debug"),
        ("AURORA_ENDPOINTS", "127.0.0.1:2379"),
    ];
    assert!(parse_with(BASE, &vars, &[]).is_ok());
}

#[test]
fn errors_name_the_layer_that_set_the_bad_value() {
    let err = parse_with(BASE, &[("AURORA_QUORUM__ELECTION_QUORUM", "1")], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable AURORA_QUORUM__ELECTION_QUORUM: quorum: replication_quorum + \
         election_quorum must exceed voters (2 + 1 <= 3); raise one of them"
    );
    assert_eq!(
        err.0[0].origin,
        Origin::Env("AURORA_QUORUM__ELECTION_QUORUM".to_owned())
    );

    let err = parse_with(BASE, &[], &["timing.heartbeat_interval_ms=fast"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "flag --set timing.heartbeat_interval_ms=fast: timing.heartbeat_interval_ms: invalid type: \
         string \"fast\", expected u64"
    );
}

#[test]
fn text_keys_take_override_values_verbatim() {
    // An all-digit secret is still a string; a quoted value is read as TOML.
    let digits = "12345678901234567890123456789012345";
    let config =
        parse_with(BASE, &[("AURORA_SECRET", digits)], &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.secret.as_bytes(), digits.as_bytes());
    let config =
        parse_with(BASE, &[], &[r#"data_dir="/srv/a b""#]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.data_dir, Path::new("/srv/a b"));
}

#[test]
fn wrong_type_in_the_file_is_named_by_key() {
    let text = BASE.replace("cluster_id = 42", "cluster_id = \"forty-two\"");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: cluster_id: invalid type: string \"forty-two\", expected u64"
    );
    let text = BASE.replace("admin_addr = \"127.0.0.1:7013\"\n", "");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: members[1].admin_addr: required key is missing; set it in the file, with \
         environment variable AURORA_MEMBERS__1__ADMIN_ADDR or with --set members[1].admin_addr=..."
    );
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let err = only_error(parse("cluster_id = 42\nnode_id = \n"));
    assert!(
        err.starts_with("node.toml: (file): not valid TOML: line 2, column 11: "),
        "{err}"
    );
}

#[test]
fn all_validation_problems_are_reported_together() {
    let text = BASE
        .replace("cluster_id = 42", "cluster_id = 0")
        .replace("node_id = 1", "node_id = 7");
    let text = format!("{text}\n[limits]\nmax_txn_ops = 0\n");
    let err = parse(&text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["cluster_id", "node_id", "limits.max_txn_ops"]);
    assert!(
        err.to_string().starts_with("3 configuration errors:\n"),
        "{err}"
    );
}

#[test]
fn dpdk_peer_table_must_cover_the_members_with_valid_addresses() {
    let text = format!(
        "{BASE}\n[dpdk]\neal_args = [\"--no-huge\"]\n\
         [[dpdk.peers]]\nid = 1\nmac = \"02:00:00:00:00:01\"\nip = \"10.0.0.1\"\nudp_port = 9000\n\
         [[dpdk.peers]]\nid = 2\nmac = \"02:00:00:00:00:01\"\nip = \"10.0.0.2\"\nudp_port = 9000\n\
         [[dpdk.peers]]\nid = 9\nmac = \"02:00:00:00:00\"\nip = \"fe80::1\"\nudp_port = 9000\n"
    );
    let err = parse_with(&text, &[], &["transport=dpdk"]).unwrap_err();
    let problems: Vec<&Problem> = err.0.iter().map(|e| &e.problem).collect();
    let has = |wanted: &dyn Fn(&Problem) -> bool| problems.iter().any(|p| wanted(p));
    assert!(
        has(&|p| matches!(p, Problem::DuplicateAddress { .. })),
        "{err}"
    );
    assert!(
        has(&|p| matches!(p, Problem::DpdkPeerUnknown { id: 9, .. })),
        "{err}"
    );
    assert!(has(&|p| matches!(p, Problem::BadMac { .. })), "{err}");
    assert!(has(&|p| matches!(p, Problem::BadIpv4 { .. })), "{err}");
    assert!(
        has(&|p| matches!(p, Problem::DpdkPeerMissing { id: 3 })),
        "{err}"
    );
}

#[test]
fn runtime_bounds_match_what_the_runtime_accepts() {
    let text = format!("{BASE}\n[runtime]\nmailbox_depth = 1000\n");
    assert_eq!(
        only_error(parse(&text)),
        "node.toml: runtime.mailbox_depth: 1000 is not a power of two (mailboxes are rings indexed \
         by masking); use e.g. 1024"
    );
    let text = format!("{BASE}\n[runtime]\nmax_park_us = 0\n");
    assert_eq!(parse(&text).unwrap_err().0[0].key, "runtime.max_park_us");
    let text = format!("{BASE}\n[runtime]\ncores = [4096]\n");
    assert_eq!(parse(&text).unwrap_err().0[0].key, "runtime.cores");
}
