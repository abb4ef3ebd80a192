//! The raw fabric under the datagram transport: send and receive whole Ethernet frames.
//!
//! Why a trait: the reliability and framing above it are the same for every datagram fabric (eRPC's
//! layering), so they are tested on an in-process [`LinkPort`] pair — loss, duplication and
//! corruption on demand, no hugepages, no EAL — and run unchanged over a DPDK ethdev (feature
//! `dpdk`, [`super::ethdev`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// One device queue pair that moves Ethernet frames (no FCS).
pub trait Port {
    /// A received frame, owned until dropped (a DPDK mbuf goes back to its mempool then).
    type Rx;

    /// The bytes of a received frame.
    fn rx_bytes(rx: &Self::Rx) -> &[u8];

    /// Appends at most `max_frames` received frames to `out` (whose capacity the caller reserved,
    /// so this never allocates).
    fn rx_burst(&mut self, out: &mut Vec<Self::Rx>, max_frames: usize);

    /// Builds a frame of `len_bytes` with `fill` in a device buffer and queues it. `false` if the
    /// device has no buffer or queue room: the frame is lost, as on any NIC, and the reliability
    /// layer retransmits it.
    fn send_with(&mut self, len_bytes: usize, fill: impl FnOnce(&mut [u8])) -> bool;

    /// Hands queued frames to the device.
    fn flush(&mut self);

    /// The largest frame the device sends, Ethernet header included.
    fn max_frame_bytes(&self) -> usize;
}

/// What an in-process link does to the frames crossing it (test knobs).
#[derive(Debug, Default)]
struct LinkFaults {
    /// Lose every frame while set.
    cut: bool,
    /// Lose each frame with probability 1/n (0: none), from a seeded generator: periodic loss
    /// can fall into step with a retransmission window and lose the same segment forever.
    loss_one_in: u64,
    rng: u64,
    /// Deliver each frame twice.
    duplicate: bool,
    sent: u64,
}

#[derive(Debug, Default)]
struct Direction {
    frames: VecDeque<Vec<u8>>,
    faults: LinkFaults,
}

/// One end of an in-process Ethernet link; [`LinkPort::pair`] makes both ends. Single-threaded,
/// like a shard. Each frame costs one heap allocation: this is a test fabric, not a fast path.
pub struct LinkPort {
    tx: Rc<RefCell<Direction>>,
    rx: Rc<RefCell<Direction>>,
    queued: Vec<Vec<u8>>,
    max_frame_bytes: usize,
    /// Frames at most in flight per direction; beyond it the link drops (a full ring).
    ring_frames: usize,
}

impl LinkPort {
    /// Two connected ends.
    pub fn pair(max_frame_bytes: usize, ring_frames: usize) -> (LinkPort, LinkPort) {
        let ab = Rc::new(RefCell::new(Direction::default()));
        let ba = Rc::new(RefCell::new(Direction::default()));
        let end = |tx: &Rc<RefCell<Direction>>, rx: &Rc<RefCell<Direction>>| LinkPort {
            tx: Rc::clone(tx),
            rx: Rc::clone(rx),
            queued: Vec::new(),
            max_frame_bytes,
            ring_frames,
        };
        (end(&ab, &ba), end(&ba, &ab))
    }

    /// Another handle on this end's link, to turn its fault knobs while the transport owns the
    /// port. It shares the queues: polling it as a port would steal the transport's frames.
    pub fn knobs(&self) -> LinkPort {
        LinkPort {
            tx: Rc::clone(&self.tx),
            rx: Rc::clone(&self.rx),
            queued: Vec::new(),
            max_frame_bytes: self.max_frame_bytes,
            ring_frames: self.ring_frames,
        }
    }

    /// Loses every frame this end sends while `cut` is set.
    pub fn set_cut(&self, cut: bool) {
        self.tx.borrow_mut().faults.cut = cut;
    }

    /// Loses each frame this end sends with probability 1/`n` (0: none); deterministic per link.
    pub fn set_loss_one_in(&self, n: u64) {
        let mut dir = self.tx.borrow_mut();
        dir.faults.loss_one_in = n;
        dir.faults.rng = 0x9E37_79B9_7F4A_7C15;
    }

    /// Delivers every frame this end sends twice.
    pub fn set_duplicate(&self, duplicate: bool) {
        self.tx.borrow_mut().faults.duplicate = duplicate;
    }

    /// Puts raw bytes on the wire towards the other end, as if a foreign host sent them.
    pub fn inject(&self, frame: Vec<u8>) {
        self.tx.borrow_mut().frames.push_back(frame);
    }
}

impl Port for LinkPort {
    type Rx = Vec<u8>;

    fn rx_bytes(rx: &Vec<u8>) -> &[u8] {
        rx
    }

    fn rx_burst(&mut self, out: &mut Vec<Vec<u8>>, max_frames: usize) {
        let mut dir = self.rx.borrow_mut();
        for _ in 0..max_frames {
            match dir.frames.pop_front() {
                Some(frame) => out.push(frame),
                None => break,
            }
        }
    }

    fn send_with(&mut self, len_bytes: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        assert!(len_bytes <= self.max_frame_bytes, "caller checks the MTU");
        let mut frame = vec![0u8; len_bytes];
        fill(&mut frame);
        self.queued.push(frame);
        true
    }

    fn flush(&mut self) {
        let mut dir = self.tx.borrow_mut();
        for frame in self.queued.drain(..) {
            let faults = &mut dir.faults;
            faults.sent += 1;
            let lost = faults.cut
                || (faults.loss_one_in != 0 && xorshift(&mut faults.rng) % faults.loss_one_in == 0);
            if lost || dir.frames.len() >= self.ring_frames {
                continue;
            }
            if dir.faults.duplicate {
                dir.frames.push_back(frame.clone());
            }
            dir.frames.push_back(frame);
        }
    }

    fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }
}

/// One step of xorshift64 (state never 0).
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    let mut x = (*state).max(1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
