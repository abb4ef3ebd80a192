//! The peer handshake: mutual authentication with the cluster secret, sans-IO.
//!
//! The node with the smaller id connects (the *connector*), the other accepts (the *acceptor*);
//! one direction per pair means no duplicate connections to reconcile.
//!
//! ```text
//! connector                                        acceptor
//!   Hello     { connector id, nonce_c }        ->
//!             <-  Challenge { acceptor id, nonce_a, mac_a = HMAC(k, "acceptor" ‖ ctx) }
//!   Response  { mac_c = HMAC(k, "connector" ‖ ctx) }  ->
//!             <-  Accept {}
//! ctx = cluster id ‖ connector id ‖ acceptor id ‖ nonce_c ‖ nonce_a
//! ```
//!
//! Both nonces are fresh (32 bytes from `getrandom(2)`), so a recorded handshake cannot be
//! replayed: each side's MAC covers the other side's nonce. The role label keeps a MAC from one
//! role being reflected back as the other's. MACs are HMAC-SHA256 (RustCrypto `hmac` + `sha2`),
//! compared in constant time (`verify_slice`). Until its side of the exchange verifies, the
//! transport delivers no frame of any other kind, so a peer without the secret cannot deliver a
//! single consensus message.
//!
//! What this does not give: confidentiality or per-frame integrity against an active
//! man-in-the-middle on the path (that needs TLS/IPsec or per-frame MACs, a later decision).

use super::pool::{Buf, BufferPool, PoolError};
use super::{PeerId, RejectReason};
use crate::wire::{encode_payload, FrameKind, HeaderFields};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// One handshake frame (`kind`, `body`) from `from` to `to`, framed into a fresh buffer of `pool`;
/// `Err` only when the pool is empty. Every transport checks at start that a slab holds the largest
/// handshake frame, so encoding cannot fail here.
pub(crate) fn control_frame(
    pool: &BufferPool,
    cluster_id: u64,
    from: PeerId,
    to: PeerId,
    kind: FrameKind,
    body: &[u8],
) -> Result<Buf, PoolError> {
    let mut buf = pool.take()?;
    let fields = HeaderFields {
        kind,
        cluster_id,
        from,
        to,
        term: 0,
        correlation_id: 0,
    };
    let len = encode_payload(buf.slab_mut(), &fields, body)
        .expect("slab_bytes was validated to hold handshake frames");
    buf.set_len(len);
    Ok(buf)
}

/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// Body of a Hello: connector id + nonce.
pub const HELLO_LEN: usize = 8 + NONCE_LEN;
/// Body of a Challenge: acceptor id + nonce + MAC.
pub const CHALLENGE_LEN: usize = 8 + NONCE_LEN + MAC_LEN;
/// Body of a Response: MAC.
pub const RESPONSE_LEN: usize = MAC_LEN;
/// Shortest secret accepted: 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The cluster secret every voter holds. `Debug` never prints it.
#[derive(Clone)]
pub struct ClusterSecret(Box<[u8]>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterSecret({} bytes, redacted)", self.0.len())
    }
}

/// A secret that is too short to resist guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster secret is {len_bytes} bytes; use at least {MIN_SECRET_BYTES} random bytes")]
pub struct WeakSecret {
    pub len_bytes: usize,
}

impl ClusterSecret {
    /// Wraps the secret bytes; at least [`MIN_SECRET_BYTES`].
    pub fn new(bytes: &[u8]) -> Result<Self, WeakSecret> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret {
                len_bytes: bytes.len(),
            });
        }
        Ok(Self(bytes.into()))
    }

    fn mac(&self, role: Role, ctx: &Context) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(role.label());
        mac.update(&ctx.cluster_id.to_le_bytes());
        mac.update(&ctx.connector.to_le_bytes());
        mac.update(&ctx.acceptor.to_le_bytes());
        mac.update(&ctx.nonce_connector);
        mac.update(&ctx.nonce_acceptor);
        mac
    }

    fn tag(&self, role: Role, ctx: &Context) -> [u8; MAC_LEN] {
        self.mac(role, ctx).finalize().into_bytes().into()
    }

    fn verify(&self, role: Role, ctx: &Context, tag: &[u8]) -> bool {
        self.mac(role, ctx).verify_slice(tag).is_ok()
    }
}

#[derive(Clone, Copy)]
enum Role {
    Connector,
    Acceptor,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Connector => b"aurora-handshake-v1 connector",
            Role::Acceptor => b"aurora-handshake-v1 acceptor",
        }
    }
}

struct Context {
    cluster_id: u64,
    connector: PeerId,
    acceptor: PeerId,
    nonce_connector: [u8; NONCE_LEN],
    nonce_acceptor: [u8; NONCE_LEN],
}

/// Fills `out` from the kernel's CSPRNG (`getrandom(2)`, blocking only before the pool is seeded
/// at boot).
pub fn fresh_nonce() -> std::io::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    let mut filled = 0;
    // Bounded: getrandom returns at least 256 bytes per call once seeded; EINTR retries are few.
    for _ in 0..16 {
        // SAFETY: the pointer and length describe the unfilled tail of `nonce`.
        let rc =
            unsafe { libc::getrandom(nonce[filled..].as_mut_ptr().cast(), NONCE_LEN - filled, 0) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += rc as usize;
        if filled == NONCE_LEN {
            return Ok(nonce);
        }
    }
    Err(std::io::Error::other("getrandom returned too few bytes"))
}

fn read_id(bytes: &[u8]) -> PeerId {
    PeerId::from_le_bytes(bytes[..8].try_into().expect("caller checked the length"))
}

/// The connector's side, from sending Hello to receiving Accept.
pub struct Connector {
    ctx: Context,
    verified_acceptor: bool,
}

impl Connector {
    /// Starts a handshake from `me` to `peer`; `hello` receives the Hello body.
    pub fn start(
        me: PeerId,
        peer: PeerId,
        cluster_id: u64,
        nonce: [u8; NONCE_LEN],
        hello: &mut [u8; HELLO_LEN],
    ) -> Self {
        hello[..8].copy_from_slice(&me.to_le_bytes());
        hello[8..].copy_from_slice(&nonce);
        Self {
            ctx: Context {
                cluster_id,
                connector: me,
                acceptor: peer,
                nonce_connector: nonce,
                nonce_acceptor: [0; NONCE_LEN],
            },
            verified_acceptor: false,
        }
    }

    /// Checks the Challenge; on success `response` receives the Response body.
    pub fn on_challenge(
        &mut self,
        secret: &ClusterSecret,
        body: &[u8],
        response: &mut [u8; RESPONSE_LEN],
    ) -> Result<(), RejectReason> {
        if body.len() != CHALLENGE_LEN || self.verified_acceptor {
            return Err(RejectReason::HandshakeProtocol);
        }
        if read_id(body) != self.ctx.acceptor {
            return Err(RejectReason::UnknownPeer);
        }
        self.ctx
            .nonce_acceptor
            .copy_from_slice(&body[8..8 + NONCE_LEN]);
        if !secret.verify(Role::Acceptor, &self.ctx, &body[8 + NONCE_LEN..]) {
            return Err(RejectReason::HandshakeBadMac);
        }
        self.verified_acceptor = true;
        *response = secret.tag(Role::Connector, &self.ctx);
        Ok(())
    }

    /// Checks the Accept; the connection is up when this succeeds.
    pub fn on_accept(&self, body: &[u8]) -> Result<(), RejectReason> {
        if !body.is_empty() || !self.verified_acceptor {
            return Err(RejectReason::HandshakeProtocol);
        }
        Ok(())
    }
}

/// The acceptor's side, from receiving Hello to verifying Response.
pub struct Acceptor {
    ctx: Context,
}

impl Acceptor {
    /// Checks the Hello (`is_peer` says whether the claimed id is a configured peer that connects
    /// to us); on success `challenge` receives the Challenge body.
    pub fn on_hello(
        me: PeerId,
        cluster_id: u64,
        secret: &ClusterSecret,
        nonce: [u8; NONCE_LEN],
        body: &[u8],
        is_peer: impl Fn(PeerId) -> bool,
        challenge: &mut [u8; CHALLENGE_LEN],
    ) -> Result<Self, RejectReason> {
        if body.len() != HELLO_LEN {
            return Err(RejectReason::HandshakeProtocol);
        }
        let connector = read_id(body);
        if connector == me || !is_peer(connector) {
            return Err(RejectReason::UnknownPeer);
        }
        let mut nonce_connector = [0u8; NONCE_LEN];
        nonce_connector.copy_from_slice(&body[8..]);
        let ctx = Context {
            cluster_id,
            connector,
            acceptor: me,
            nonce_connector,
            nonce_acceptor: nonce,
        };
        challenge[..8].copy_from_slice(&me.to_le_bytes());
        challenge[8..8 + NONCE_LEN].copy_from_slice(&nonce);
        challenge[8 + NONCE_LEN..].copy_from_slice(&secret.tag(Role::Acceptor, &ctx));
        Ok(Self { ctx })
    }

    /// The id the connector claimed (authenticated only once [`Acceptor::on_response`] succeeds).
    pub fn claimed_peer(&self) -> PeerId {
        self.ctx.connector
    }

    /// Checks the Response; on success the connector is authenticated as the returned peer.
    pub fn on_response(&self, secret: &ClusterSecret, body: &[u8]) -> Result<PeerId, RejectReason> {
        if body.len() != RESPONSE_LEN {
            return Err(RejectReason::HandshakeProtocol);
        }
        if !secret.verify(Role::Connector, &self.ctx, body) {
            return Err(RejectReason::HandshakeBadMac);
        }
        Ok(self.ctx.connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: u64 = 0xA0A0;

    fn secret(byte: u8) -> ClusterSecret {
        ClusterSecret::new(&[byte; 32]).unwrap()
    }

    /// Runs a handshake where each side holds its own secret; returns what each side concluded.
    fn handshake(
        connector_secret: &ClusterSecret,
        acceptor_secret: &ClusterSecret,
    ) -> (Result<(), RejectReason>, Result<PeerId, RejectReason>) {
        let mut hello = [0; HELLO_LEN];
        let mut c = Connector::start(1, 2, CLUSTER, fresh_nonce().unwrap(), &mut hello);
        let mut challenge = [0; CHALLENGE_LEN];
        let a = Acceptor::on_hello(
            2,
            CLUSTER,
            acceptor_secret,
            fresh_nonce().unwrap(),
            &hello,
            |p| p == 1,
            &mut challenge,
        )
        .unwrap();
        let mut response = [0; RESPONSE_LEN];
        let connector_view = c.on_challenge(connector_secret, &challenge, &mut response);
        let acceptor_view = a.on_response(acceptor_secret, &response);
        (connector_view, acceptor_view)
    }

    #[test]
    fn both_sides_holding_the_secret_authenticate_each_other() {
        let (c, a) = handshake(&secret(7), &secret(7));
        assert_eq!(c, Ok(()));
        assert_eq!(a, Ok(1));
    }

    #[test]
    fn a_wrong_secret_fails_on_both_sides() {
        let (c, a) = handshake(&secret(7), &secret(8));
        assert_eq!(
            c,
            Err(RejectReason::HandshakeBadMac),
            "connector rejects an acceptor without the secret"
        );
        assert_eq!(
            a,
            Err(RejectReason::HandshakeBadMac),
            "acceptor rejects a connector without the secret"
        );
    }

    #[test]
    fn a_recorded_response_does_not_verify_against_a_fresh_challenge() {
        let s = secret(7);
        let mut hello = [0; HELLO_LEN];
        let mut c = Connector::start(1, 2, CLUSTER, fresh_nonce().unwrap(), &mut hello);
        let mut challenge = [0; CHALLENGE_LEN];
        let first = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            fresh_nonce().unwrap(),
            &hello,
            |_| true,
            &mut challenge,
        )
        .unwrap();
        let mut recorded = [0; RESPONSE_LEN];
        c.on_challenge(&s, &challenge, &mut recorded).unwrap();
        assert_eq!(first.on_response(&s, &recorded), Ok(1));
        // The attacker replays the same Hello and the recorded Response on a new connection.
        let second = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            fresh_nonce().unwrap(),
            &hello,
            |_| true,
            &mut challenge,
        )
        .unwrap();
        assert_eq!(
            second.on_response(&s, &recorded),
            Err(RejectReason::HandshakeBadMac)
        );
    }

    #[test]
    fn the_acceptor_mac_cannot_be_reflected_as_the_connector_mac() {
        let s = secret(7);
        let mut hello = [0; HELLO_LEN];
        Connector::start(1, 2, CLUSTER, fresh_nonce().unwrap(), &mut hello);
        let mut challenge = [0; CHALLENGE_LEN];
        let a = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            fresh_nonce().unwrap(),
            &hello,
            |_| true,
            &mut challenge,
        )
        .unwrap();
        let reflected = &challenge[8 + NONCE_LEN..];
        assert_eq!(
            a.on_response(&s, reflected),
            Err(RejectReason::HandshakeBadMac)
        );
    }

    #[test]
    fn unknown_or_self_ids_and_bad_lengths_are_rejected() {
        let s = secret(7);
        let mut challenge = [0; CHALLENGE_LEN];
        let mut hello = [0; HELLO_LEN];
        Connector::start(9, 2, CLUSTER, [1; NONCE_LEN], &mut hello);
        let not_peer = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            [2; NONCE_LEN],
            &hello,
            |p| p == 1,
            &mut challenge,
        );
        assert_eq!(not_peer.err(), Some(RejectReason::UnknownPeer));
        Connector::start(2, 2, CLUSTER, [1; NONCE_LEN], &mut hello);
        let itself = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            [2; NONCE_LEN],
            &hello,
            |_| true,
            &mut challenge,
        );
        assert_eq!(itself.err(), Some(RejectReason::UnknownPeer));
        let short = Acceptor::on_hello(
            2,
            CLUSTER,
            &s,
            [2; NONCE_LEN],
            &hello[..5],
            |_| true,
            &mut challenge,
        );
        assert_eq!(short.err(), Some(RejectReason::HandshakeProtocol));
        let mut c = Connector::start(1, 2, CLUSTER, [1; NONCE_LEN], &mut hello);
        assert_eq!(
            c.on_accept(&[]),
            Err(RejectReason::HandshakeProtocol),
            "Accept before a verified Challenge"
        );
        let mut response = [0; RESPONSE_LEN];
        assert_eq!(
            c.on_challenge(&s, &[0; 3], &mut response),
            Err(RejectReason::HandshakeProtocol)
        );
    }

    #[test]
    fn nonces_are_fresh_and_secrets_are_not_printed() {
        assert_ne!(fresh_nonce().unwrap(), fresh_nonce().unwrap());
        assert_eq!(
            format!("{:?}", secret(0x41)),
            "ClusterSecret(32 bytes, redacted)"
        );
        assert_eq!(
            ClusterSecret::new(b"short").unwrap_err(),
            WeakSecret { len_bytes: 5 }
        );
    }
}
