//! Every example in `config/` loads and validates (the fabric ones with the one error a build
//! without their transport must give), and together they document every key.

use std::io::Write;
use std::path::{Path, PathBuf};

use aurora::config::{self, Config, ConfigErrors, Durability, Problem, TransportKind};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// A secret file as production would have it: 32+ bytes, mode 0600 (tempfile's default).
fn secret_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "0123456789abcdef0123456789abcdef").expect("write secret");
    file
}

/// Loads a shared example as node `node_id`, with the secret file the example names (if it uses
/// one) replaced by a readable one, as an operator would through the environment.
fn load_as(
    name: &str,
    node_id: u64,
    secret: Option<&tempfile::NamedTempFile>,
) -> Result<Config, ConfigErrors> {
    let mut env = vec![("AURORA_NODE_ID".to_owned(), node_id.to_string())];
    if let Some(secret) = secret {
        env.push((
            "AURORA_SECRET_FILE".to_owned(),
            secret.path().display().to_string(),
        ));
    }
    config::load(&example(name), env, Vec::new())
}

#[test]
fn single_node_example_is_valid() {
    let config = config::load(&example("single-node.toml"), Vec::new(), Vec::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.node_id, 1);
    assert_eq!(config.quorum.voters(), 1);
    assert_eq!(config.durability, Durability::Fsync);
    assert_eq!(config.transport, TransportKind::TcpUring);
}

#[test]
fn cluster_3_example_is_valid_for_each_node() {
    let secret = secret_file();
    for node_id in 1..=3 {
        let config =
            load_as("cluster-3.toml", node_id, Some(&secret)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.this_member().id, node_id);
        assert_eq!(config.quorum.voters(), 3);
        assert_eq!(
            config.secret.as_bytes(),
            b"0123456789abcdef0123456789abcdef"
        );
    }
}

#[test]
fn cluster_3_example_needs_a_node_id() {
    let secret = secret_file();
    let env = vec![(
        "AURORA_SECRET_FILE".to_owned(),
        secret.path().display().to_string(),
    )];
    let err = config::load(&example("cluster-3.toml"), env, Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: node_id: required key is missing; set it in the file, with environment variable \
             AURORA_NODE_ID or with --set node_id=...",
            example("cluster-3.toml").display()
        )
    );
}

/// A fabric example is valid in a build with its transport, and otherwise fails with exactly the
/// one error that names the missing feature — so everything else in it was validated.
fn assert_valid_unless_transport_missing(
    name: &str,
    transport: TransportKind,
    secret: Option<&tempfile::NamedTempFile>,
) {
    for node_id in 1..=3 {
        match load_as(name, node_id, secret) {
            Ok(config) => {
                assert!(transport.is_built(), "{name} loaded without its transport");
                assert_eq!(config.transport, transport);
            }
            Err(ConfigErrors(errors)) => {
                assert!(!transport.is_built(), "{name}: {errors:?}");
                let feature = transport.cargo_feature().expect("a fabric transport");
                assert_eq!(
                    errors.iter().map(|e| &e.problem).collect::<Vec<_>>(),
                    vec![&Problem::TransportNotBuilt { transport, feature }],
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn hpc_memory_example_is_valid_but_for_the_rdma_feature() {
    let secret = secret_file();
    assert_valid_unless_transport_missing("hpc-memory.toml", TransportKind::Rdma, Some(&secret));
}

#[test]
fn hpc_memory_example_uses_flexible_quorums_over_voters_only() {
    // Check everything else by swapping the transport for one every build has.
    let secret = secret_file();
    let env = vec![
        ("AURORA_NODE_ID".to_owned(), "6".to_owned()),
        (
            "AURORA_SECRET_FILE".to_owned(),
            secret.path().display().to_string(),
        ),
    ];
    let config = config::load(
        &example("hpc-memory.toml"),
        env,
        vec!["transport=tcp_uring".to_owned()],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.durability, Durability::Memory);
    assert_eq!(config.voters().count(), 5);
    assert_eq!(config.members.len(), 6);
    assert_eq!(
        (config.quorum.election(), config.quorum.replication()),
        (4, 2)
    );
    assert!(config.runtime.pin);
    assert_eq!(config.timing.lease_ms(), 19);
    assert_eq!(
        config.rdma, None,
        "the [rdma] section only applies to transport rdma"
    );
}

#[test]
fn dpdk_example_is_valid_but_for_the_dpdk_feature() {
    // The DPDK rig's file carries an inline secret: no secret file to supply.
    assert_valid_unless_transport_missing("dpdk-memif.toml", TransportKind::Dpdk, None);
}

#[test]
fn examples_cover_every_file_in_config_dir() {
    let mut names: Vec<String> = std::fs::read_dir(example(""))
        .expect("config/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cluster-3.toml",
            "dpdk-memif.toml",
            "hpc-memory.toml",
            "single-node.toml"
        ],
        "a new example needs a test above"
    );
}

#[test]
fn examples_together_document_every_key() {
    let text: String = [
        "single-node.toml",
        "cluster-3.toml",
        "hpc-memory.toml",
        "dpdk-memif.toml",
    ]
    .iter()
    .map(|n| std::fs::read_to_string(example(n)).expect("example readable"))
    .collect();
    for key in config::keys() {
        let name = key.rsplit(['.', ']']).next().expect("non-empty key");
        assert!(text.contains(name), "no example mentions {key}");
    }
}
