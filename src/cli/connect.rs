//! What every client command shares: where the cluster is, how long to wait, how errors print.

use std::time::Duration;

use clap::Args;

use crate::client::{parse_endpoints, Client, ClientError, ClientOptions, Consistency};
use crate::store::KeyRange;

/// The client endpoints of the cluster `aurora up` starts with its default ports.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7102,127.0.0.1:7112,127.0.0.1:7122";

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Client addresses of the cluster's nodes, HOST:PORT comma-separated (any subset works; the
    /// leader is found from there).
    #[arg(long, env = "AURORA_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, global = true)]
    pub endpoints: String,
    /// How long one command may take, leader changes and retries included.
    #[arg(long, default_value_t = 5000, global = true)]
    pub timeout_ms: u64,
    /// The cluster's id (`cluster_id` in its config; hex or decimal). The default is the id of
    /// every cluster `aurora up` starts.
    #[arg(long, env = "AURORA_CLUSTER_ID", default_value = "0x0a171000", value_parser = parse_cluster_id, global = true)]
    pub cluster_id: u64,
}

fn parse_cluster_id(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse::<u64>(),
    };
    parsed.map_err(|_| {
        format!("{text:?} is not a cluster id; copy cluster_id from the cluster's config")
    })
}

impl ClientArgs {
    pub fn options(&self) -> Result<ClientOptions, ClientError> {
        let mut opts = ClientOptions::new(parse_endpoints(&self.endpoints)?);
        opts.request_timeout = Duration::from_millis(self.timeout_ms.max(1));
        opts.cluster_id = self.cluster_id;
        Ok(opts)
    }

    pub fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(self.options()?)
    }

    /// Runs `f` with a fresh client, then closes the session a write may have opened (best
    /// effort: an unclosed session is evicted by the store later anyway).
    pub fn session<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut client = self.connect()?;
        let result = f(&mut client);
        let _ = client.close_session();
        result
    }

    /// A client whose reads may be served stale by whichever node it reaches.
    pub fn connect_with(&self, consistency: Consistency) -> Result<Client, ClientError> {
        let mut opts = self.options()?;
        opts.consistency = consistency;
        Client::connect(opts)
    }
}

/// A key, or with `--prefix` every key that starts with it.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    pub key: String,
    /// Every key that starts with KEY.
    #[arg(long)]
    pub prefix: bool,
}

impl KeyArgs {
    pub fn range(&self) -> KeyRange {
        if self.prefix {
            KeyRange::prefix(self.key.as_bytes())
        } else {
            KeyRange::single(self.key.as_bytes())
        }
    }
}

/// Prints `aurora CMD: ERROR` (one line) and returns the exit code for it.
pub fn fail(command: &str, error: &ClientError) -> i32 {
    eprintln!("aurora {command}: {error}");
    1
}
