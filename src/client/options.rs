//! How a client finds the cluster and how long it waits.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::error::ClientError;
use crate::server::protocol::Consistency;

/// The most endpoints a client tracks (listed plus learned from `NotLeader` hints).
pub const MAX_ENDPOINTS: usize = 64;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Nodes to try, in order; the leader's address is learned from their answers.
    pub endpoints: Vec<SocketAddr>,
    /// The cluster id the client sends; 0 lets the first node that answers tell it.
    pub cluster_id: u64,
    /// How long one request may take end to end, retries and leader changes included.
    pub request_timeout: Duration,
    /// How long a TCP connect to one endpoint may take before the next one is tried.
    pub connect_timeout: Duration,
    /// How long a connection may stay silent while requests wait for an answer before the client
    /// gives up on that node and re-sends them elsewhere (a stopped or partitioned node).
    pub attempt_timeout: Duration,
    /// Requests a client keeps in flight at most ([`super::Client::submit`] refuses more).
    pub max_in_flight: usize,
    /// How fresh reads must be.
    pub consistency: Consistency,
}

impl ClientOptions {
    /// Defaults for `endpoints`: 5 s per request, 500 ms per connect, 1 s of silence.
    pub fn new(endpoints: Vec<SocketAddr>) -> Self {
        Self {
            endpoints,
            cluster_id: 0,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(1),
            max_in_flight: 1024,
            consistency: Consistency::Linearizable,
        }
    }
}

/// Parses `HOST:PORT[,HOST:PORT...]`; a host name resolves to its first address.
pub fn parse_endpoints(text: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |reason: String| ClientError::BadEndpoint {
            text: part.to_owned(),
            reason,
        };
        let addr = match part.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                if !part.contains(':') {
                    return Err(bad("missing :PORT".to_owned()));
                }
                part.to_socket_addrs()
                    .map_err(|e| bad(e.to_string()))?
                    .next()
                    .ok_or_else(|| bad("the name resolves to no address".to_owned()))?
            }
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(ClientError::NoEndpoints);
    }
    if out.len() > MAX_ENDPOINTS {
        return Err(ClientError::BadEndpoint {
            text: text.to_owned(),
            reason: format!("{} endpoints, at most {MAX_ENDPOINTS}", out.len()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_lists_and_drop_duplicates() {
        let e = parse_endpoints("127.0.0.1:7102, 127.0.0.1:7112,127.0.0.1:7102,").expect("ok");
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].port(), 7112);
        assert_eq!(
            parse_endpoints("localhost:7102").expect("name")[0].port(),
            7102
        );
    }

    #[test]
    fn bad_endpoints_are_named() {
        assert_eq!(parse_endpoints(" , "), Err(ClientError::NoEndpoints));
        let e = parse_endpoints("127.0.0.1")
            .expect_err("no port")
            .to_string();
        assert!(e.contains("127.0.0.1") && e.contains("PORT"), "{e}");
        let e = parse_endpoints("127.0.0.1:notaport")
            .expect_err("bad port")
            .to_string();
        assert!(e.contains("notaport"), "{e}");
    }
}
