//! Ethernet II / IPv4 / UDP framing of the datagram fabric, with both checksums, no allocation.
//!
//! Why our own: DPDK hands us raw Ethernet frames and the fabric is a plain L2 segment (a memif
//! pair, a veth), so there is no kernel stack to build or check headers. Every outgoing datagram is
//! `Ethernet (14) | IPv4 (20, no options) | UDP (8) | body`; every incoming frame passes
//! [`parse`], which checks the ethertype, the IPv4 header (version, length, no fragments,
//! protocol, checksum), the UDP length and checksum, and the addressing, and returns the body or
//! the exact [`Drop`] reason the caller counts. Nothing here panics on any input.

use std::net::Ipv4Addr;

/// Ethernet II header bytes (no VLAN tag: the rigs are untagged segments).
pub const ETH_LEN: usize = 14;
/// IPv4 header bytes: we send no options and drop datagrams that carry any.
pub const IPV4_LEN: usize = 20;
/// UDP header bytes.
pub const UDP_LEN: usize = 8;
/// Everything in front of the UDP body.
pub const HEADERS_LEN: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// Smallest Ethernet frame without FCS; shorter frames are padded by us and by NICs.
pub const MIN_FRAME_LEN: usize = 60;

const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const TTL: u8 = 64;

/// One end of a UDP flow over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub udp_port: u16,
}

/// Why an incoming frame was dropped. Each is counted separately (see the transport's stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Shorter than the headers it claims (or than Ethernet + IPv4 + UDP).
    Truncated,
    /// Not IPv4 (ARP, IPv6 neighbour discovery, LLDP… reach af_packet/af_xdp ports).
    ForeignEthertype,
    /// Not version 4, options present, a fragment, or a bad total length.
    BadIpHeader,
    /// Not UDP.
    NotUdp,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// The UDP length field disagrees with the IP length.
    BadUdpLength,
    /// The UDP checksum is missing (zero) or does not verify.
    BadUdpChecksum,
    /// Addressed to another MAC, IP or UDP port.
    NotForUs,
}

impl Drop {
    /// Every reason, in counter order.
    pub const ALL: [Drop; 8] = [
        Drop::Truncated,
        Drop::ForeignEthertype,
        Drop::BadIpHeader,
        Drop::NotUdp,
        Drop::BadIpChecksum,
        Drop::BadUdpLength,
        Drop::BadUdpChecksum,
        Drop::NotForUs,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Drop::Truncated => "truncated",
            Drop::ForeignEthertype => "foreign_ethertype",
            Drop::BadIpHeader => "bad_ip_header",
            Drop::NotUdp => "not_udp",
            Drop::BadIpChecksum => "bad_ip_checksum",
            Drop::BadUdpLength => "bad_udp_length",
            Drop::BadUdpChecksum => "bad_udp_checksum",
            Drop::NotForUs => "not_for_us",
        }
    }
}

/// A frame that passed every check: who sent it and the UDP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: Endpoint,
    pub body: &'a [u8],
}

/// Bytes on the wire for a body of `body_len` bytes (padded to the Ethernet minimum).
pub const fn frame_len(body_len: usize) -> usize {
    let len = HEADERS_LEN + body_len;
    if len < MIN_FRAME_LEN {
        MIN_FRAME_LEN
    } else {
        len
    }
}

/// Writes the headers for `body_len` body bytes already placed at `frame[HEADERS_LEN..]`, with
/// both checksums; pads short frames with zeros. Returns the frame length.
///
/// # Panics
/// If `frame` is shorter than [`frame_len`]`(body_len)` or the body exceeds what IPv4 can carry:
/// the caller sized the buffer, so that is a bug, not input.
pub fn write_headers(frame: &mut [u8], src: &Endpoint, dst: &Endpoint, body_len: usize) -> usize {
    let total = frame_len(body_len);
    assert!(frame.len() >= total, "frame buffer too small for the body");
    let ip_len = IPV4_LEN + UDP_LEN + body_len;
    let ip_len = u16::try_from(ip_len).expect("body fits one IPv4 datagram (caller checks MTU)");
    frame[HEADERS_LEN + body_len..total].fill(0);

    frame[0..6].copy_from_slice(&dst.mac);
    frame[6..12].copy_from_slice(&src.mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

    let ip = &mut frame[ETH_LEN..ETH_LEN + IPV4_LEN];
    ip[0] = 0x45; // version 4, IHL 5 words
    ip[1] = 0; // DSCP/ECN
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&0u16.to_be_bytes()); // identification: unused without fragments
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = TTL;
    ip[9] = IPPROTO_UDP;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&src.ip.octets());
    ip[16..20].copy_from_slice(&dst.ip.octets());
    let ip_sum = fold(sum_words(ip, 0));
    ip[10..12].copy_from_slice(&(!ip_sum).to_be_bytes());

    let udp_len = ip_len - IPV4_LEN as u16;
    let udp_start = ETH_LEN + IPV4_LEN;
    let udp = &mut frame[udp_start..udp_start + UDP_LEN];
    udp[0..2].copy_from_slice(&src.udp_port.to_be_bytes());
    udp[2..4].copy_from_slice(&dst.udp_port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].fill(0);
    let sum = udp_checksum(
        src.ip,
        dst.ip,
        &frame[udp_start..udp_start + usize::from(udp_len)],
    );
    frame[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
    total
}

/// Checks an incoming Ethernet frame addressed to `local` and returns its UDP body.
pub fn parse<'a>(frame: &'a [u8], local: &Endpoint) -> Result<Datagram<'a>, Drop> {
    if frame.len() < ETH_LEN {
        return Err(Drop::Truncated);
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return Err(Drop::ForeignEthertype);
    }
    if frame.len() < HEADERS_LEN {
        return Err(Drop::Truncated);
    }
    let ip = &frame[ETH_LEN..ETH_LEN + IPV4_LEN];
    if ip[0] != 0x45 {
        return Err(Drop::BadIpHeader);
    }
    let ip_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let flags_fragment = u16::from_be_bytes([ip[6], ip[7]]);
    // More-fragments set or a non-zero offset: we never fragment, so this is not ours.
    if flags_fragment & 0x3FFF != 0 || ip_len < IPV4_LEN + UDP_LEN {
        return Err(Drop::BadIpHeader);
    }
    if frame.len() < ETH_LEN + ip_len {
        return Err(Drop::Truncated);
    }
    if ip[9] != IPPROTO_UDP {
        return Err(Drop::NotUdp);
    }
    if fold(sum_words(ip, 0)) != 0xFFFF {
        return Err(Drop::BadIpChecksum);
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp_start = ETH_LEN + IPV4_LEN;
    let udp = &frame[udp_start..ETH_LEN + ip_len];
    if usize::from(u16::from_be_bytes([udp[4], udp[5]])) != udp.len() {
        return Err(Drop::BadUdpLength);
    }
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    // Zero means "no checksum" in IPv4; we always send one, so a frame without is not ours.
    if stored == 0 || udp_verify(src_ip, dst_ip, udp) != 0xFFFF {
        return Err(Drop::BadUdpChecksum);
    }
    let dst_mac: [u8; 6] = frame[0..6].try_into().expect("length checked");
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    if dst_mac != local.mac || dst_ip != local.ip || dst_port != local.udp_port {
        return Err(Drop::NotForUs);
    }
    Ok(Datagram {
        src: Endpoint {
            mac: frame[6..12].try_into().expect("length checked"),
            ip: src_ip,
            udp_port: u16::from_be_bytes([udp[0], udp[1]]),
        },
        body: &udp[UDP_LEN..],
    })
}

/// One's-complement sum of big-endian 16-bit words (odd tail padded with zero), unfolded.
///
/// Adds 32-bit big-endian words into a 64-bit accumulator (RFC 1071 §2(B): the sum may be taken
/// in larger words and folded at the end), four bytes per step instead of two: this runs twice
/// per datagram on each side of the hot path.
fn sum_words(bytes: &[u8], initial: u32) -> u32 {
    let mut sum = u64::from(initial);
    let mut quads = bytes.chunks_exact(4);
    for quad in &mut quads {
        sum += u64::from(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]));
    }
    let tail = quads.remainder();
    let mut pairs = tail.chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    // Fold to 32 bits without losing a carry: at most 2^30 words of 2^32, far below 2^64.
    while sum > u64::from(u32::MAX) {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    }
    sum as u32
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, udp_len: usize) -> u32 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = IPPROTO_UDP;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    sum_words(&pseudo, 0)
}

/// The UDP checksum to store (RFC 768: a computed zero is sent as all ones).
fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let sum = !fold(sum_words(udp, pseudo_header(src, dst, udp.len())));
    if sum == 0 {
        0xFFFF
    } else {
        sum
    }
}

/// The folded sum over pseudo-header and datagram, checksum included: all ones when it verifies.
fn udp_verify(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    fold(sum_words(udp, pseudo_header(src, dst, udp.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> Endpoint {
        Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(10, 99, 0, 1),
            udp_port: 9001,
        }
    }

    fn b() -> Endpoint {
        Endpoint {
            mac: [2, 0, 0, 0, 0, 2],
            ip: Ipv4Addr::new(10, 99, 0, 2),
            udp_port: 9002,
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; frame_len(body.len())];
        f[HEADERS_LEN..HEADERS_LEN + body.len()].copy_from_slice(body);
        let len = write_headers(&mut f, &a(), &b(), body.len());
        assert_eq!(len, f.len());
        f
    }

    #[test]
    fn a_written_frame_parses_back_to_its_body_and_source() {
        for len in [0usize, 1, 17, 18, 19, 255, 1400] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let f = frame(&body);
            let d = parse(&f, &b()).unwrap();
            assert_eq!(d.body, &body[..]);
            assert_eq!(d.src, a());
        }
    }

    #[test]
    fn checksums_match_an_independent_reference() {
        // Reference: the textbook RFC 1071 loop over the same bytes, written separately.
        fn rfc1071(bytes: &[u8]) -> u16 {
            let mut sum: u32 = 0;
            let mut i = 0;
            while i + 1 < bytes.len() {
                sum += u32::from(bytes[i]) << 8 | u32::from(bytes[i + 1]);
                i += 2;
            }
            if i < bytes.len() {
                sum += u32::from(bytes[i]) << 8;
            }
            while sum >> 16 != 0 {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
            !(sum as u16)
        }
        let f = frame(b"checksum me, odd length");
        let ip = &f[ETH_LEN..ETH_LEN + IPV4_LEN];
        let mut zeroed = ip.to_vec();
        zeroed[10..12].fill(0);
        assert_eq!(u16::from_be_bytes([ip[10], ip[11]]), rfc1071(&zeroed));
        let udp = &f[ETH_LEN + IPV4_LEN..];
        let udp = &udp[..usize::from(u16::from_be_bytes([udp[4], udp[5]]))];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&a().ip.octets());
        pseudo.extend_from_slice(&b().ip.octets());
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        let stored = u16::from_be_bytes([udp[6], udp[7]]);
        let at = pseudo.len() - udp.len() + 6;
        pseudo[at..at + 2].fill(0);
        assert_eq!(stored, rfc1071(&pseudo));
    }

    #[test]
    fn the_wide_sum_folds_to_the_sixteen_bit_sum_at_every_length() {
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let mut narrow: u64 = 0;
            for pair in bytes.chunks(2) {
                let hi = u64::from(pair[0]) << 8;
                narrow += hi | pair.get(1).map_or(0, |b| u64::from(*b));
            }
            while narrow > 0xFFFF {
                narrow = (narrow & 0xFFFF) + (narrow >> 16);
            }
            assert_eq!(
                u64::from(fold(sum_words(&bytes, 0))),
                narrow,
                "length {len}"
            );
        }
    }

    #[test]
    fn every_flipped_bit_in_headers_or_body_is_caught() {
        let f = frame(b"0123456789abcdef");
        // The source MAC (bytes 6..12) is covered by no checksum; the peer table checks it.
        for byte in (0..6).chain(12..HEADERS_LEN + 16) {
            for bit in 0..8 {
                let mut bad = f.clone();
                bad[byte] ^= 1 << bit;
                assert!(parse(&bad, &b()).is_err(), "byte {byte} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn each_malformation_has_its_own_reason() {
        let f = frame(b"hello");
        assert_eq!(parse(&f[..10], &b()), Err(Drop::Truncated));
        assert_eq!(parse(&f[..30], &b()), Err(Drop::Truncated));
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse(&arp, &b()), Err(Drop::ForeignEthertype));
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&0x86DDu16.to_be_bytes());
        assert_eq!(parse(&v6, &b()), Err(Drop::ForeignEthertype));
        let mut opts = f.clone();
        opts[ETH_LEN] = 0x46;
        assert_eq!(parse(&opts, &b()), Err(Drop::BadIpHeader));
        let mut frag = f.clone();
        frag[ETH_LEN + 6] = 0x20; // more fragments
        assert_eq!(parse(&frag, &b()), Err(Drop::BadIpHeader));
        let mut tcp = f.clone();
        tcp[ETH_LEN + 9] = 6;
        assert_eq!(parse(&tcp, &b()), Err(Drop::NotUdp));
        let mut ipsum = f.clone();
        ipsum[ETH_LEN + 8] ^= 1; // TTL
        assert_eq!(parse(&ipsum, &b()), Err(Drop::BadIpChecksum));
        let mut nosum = f.clone();
        nosum[ETH_LEN + IPV4_LEN + 6..ETH_LEN + IPV4_LEN + 8].fill(0);
        assert_eq!(parse(&nosum, &b()), Err(Drop::BadUdpChecksum));
        let mut body = f.clone();
        body[HEADERS_LEN] ^= 0x40;
        assert_eq!(parse(&body, &b()), Err(Drop::BadUdpChecksum));
        assert_eq!(parse(&f, &a()), Err(Drop::NotForUs));
        // A frame cut inside the IP datagram (beyond the minimum-size padding).
        let long = frame(&[9u8; 100]);
        assert_eq!(parse(&long[..long.len() - 1], &b()), Err(Drop::Truncated));
    }

    #[test]
    fn short_frames_are_padded_and_the_padding_is_ignored() {
        let f = frame(b"x");
        assert_eq!(f.len(), MIN_FRAME_LEN);
        assert_eq!(parse(&f, &b()).unwrap().body, b"x");
    }
}
