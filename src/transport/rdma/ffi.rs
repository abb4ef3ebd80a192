//! The flat C ABI of `shim.c` (see its header for why a shim). Pointers are opaque here; the
//! structs below mirror the shim's and nothing else of the verbs headers is declared in Rust.

use std::ffi::{c_char, c_int, c_void};

macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}
opaque!(CmChannel, CmId, Context, Pd, Mr, CompChannel, Cq, Qp);

/// One work completion (`struct aur_wc`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Wc {
    pub wr_id: u64,
    pub status: u32,
    pub opcode: u32,
    pub byte_len: u32,
    /// Immediate data as it was on the wire (big-endian).
    pub imm_be: u32,
    pub has_imm: u32,
    pub qp_num: u32,
}

/// One rdma_cm event, already acknowledged (`struct aur_cm_event`).
#[repr(C)]
pub struct CmEvent {
    pub kind: u32,
    pub status: i32,
    pub id: *mut CmId,
    pub listen_id: *mut CmId,
    pub id_context: u64,
    pub private_data_len: u32,
    pub private_data: [u8; 56],
}

impl Default for CmEvent {
    fn default() -> Self {
        Self {
            kind: 0,
            status: 0,
            id: std::ptr::null_mut(),
            listen_id: std::ptr::null_mut(),
            id_context: 0,
            private_data_len: 0,
            private_data: [0; 56],
        }
    }
}

/// `enum ibv_wc_status`: success.
pub const WC_SUCCESS: u32 = 0;
/// `IBV_WC_WR_FLUSH_ERR`: the QP went to ERROR before this request ran.
pub const WC_WR_FLUSH_ERR: u32 = 5;
/// `IBV_WC_REM_ACCESS_ERR`: the target refused the rkey (revoked write permission).
pub const WC_REM_ACCESS_ERR: u32 = 10;

/// `enum ibv_wc_opcode` values the transport tells apart.
pub const WC_RECV: u32 = 1 << 7;
pub const WC_RECV_RDMA_WITH_IMM: u32 = WC_RECV + 1;

/// `enum rdma_cm_event_type`.
pub mod cm {
    pub const ADDR_RESOLVED: u32 = 0;
    pub const ADDR_ERROR: u32 = 1;
    pub const ROUTE_RESOLVED: u32 = 2;
    pub const ROUTE_ERROR: u32 = 3;
    pub const CONNECT_REQUEST: u32 = 4;
    pub const CONNECT_ERROR: u32 = 6;
    pub const UNREACHABLE: u32 = 7;
    pub const REJECTED: u32 = 8;
    pub const ESTABLISHED: u32 = 9;
    pub const DISCONNECTED: u32 = 10;
    pub const DEVICE_REMOVAL: u32 = 11;
}

extern "C" {
    pub fn aur_cm_channel_create() -> *mut CmChannel;
    pub fn aur_cm_channel_destroy(ch: *mut CmChannel);
    pub fn aur_cm_channel_fd(ch: *mut CmChannel) -> c_int;
    pub fn aur_cm_get_event(ch: *mut CmChannel, out: *mut CmEvent) -> c_int;
    pub fn aur_cm_id_create(ch: *mut CmChannel, context: u64) -> *mut CmId;
    pub fn aur_cm_id_set_context(id: *mut CmId, context: u64);
    pub fn aur_cm_id_destroy(id: *mut CmId) -> c_int;
    pub fn aur_cm_listen(id: *mut CmId, addr_be: u32, port: u16, backlog: c_int) -> c_int;
    pub fn aur_cm_local_port(id: *mut CmId) -> u16;
    pub fn aur_cm_resolve_addr(
        id: *mut CmId,
        src_be: u32,
        dst_be: u32,
        port: u16,
        timeout_ms: c_int,
    ) -> c_int;
    pub fn aur_cm_resolve_route(id: *mut CmId, timeout_ms: c_int) -> c_int;
    pub fn aur_cm_create_qp(
        id: *mut CmId,
        pd: *mut Pd,
        cq: *mut Cq,
        send_depth: u32,
        recv_depth: u32,
        max_inline: u32,
    ) -> *mut Qp;
    pub fn aur_cm_destroy_qp(id: *mut CmId);
    pub fn aur_cm_set_ack_timeout(id: *mut CmId, exp: u8) -> c_int;
    pub fn aur_cm_connect(id: *mut CmId, data: *const c_void, len: u8) -> c_int;
    pub fn aur_cm_accept(id: *mut CmId) -> c_int;
    pub fn aur_cm_reject(id: *mut CmId) -> c_int;
    pub fn aur_cm_disconnect(id: *mut CmId) -> c_int;
    pub fn aur_device_open(name: *const c_char) -> *mut Context;
    pub fn aur_pd_alloc(ctx: *mut Context) -> *mut Pd;
    pub fn aur_pd_dealloc(pd: *mut Pd) -> c_int;
    pub fn aur_mr_reg(pd: *mut Pd, addr: *mut c_void, len: usize, remote_write: c_int) -> *mut Mr;
    pub fn aur_mr_dereg(mr: *mut Mr) -> c_int;
    pub fn aur_mr_lkey(mr: *mut Mr) -> u32;
    pub fn aur_mr_rkey(mr: *mut Mr) -> u32;
    pub fn aur_comp_channel_create(ctx: *mut Context) -> *mut CompChannel;
    pub fn aur_comp_channel_destroy(ch: *mut CompChannel) -> c_int;
    pub fn aur_comp_channel_fd(ch: *mut CompChannel) -> c_int;
    pub fn aur_cq_create(ctx: *mut Context, cqe: c_int, ch: *mut CompChannel) -> *mut Cq;
    pub fn aur_cq_destroy(cq: *mut Cq) -> c_int;
    pub fn aur_cq_req_notify(cq: *mut Cq) -> c_int;
    pub fn aur_cq_take_notification(ch: *mut CompChannel) -> c_int;
    pub fn aur_cq_poll(cq: *mut Cq, max: c_int, out: *mut Wc) -> c_int;
    pub fn aur_wc_status_str(status: u32) -> *const c_char;
    pub fn aur_post_recv(qp: *mut Qp, wr_id: u64, addr: *mut c_void, len: u32, lkey: u32) -> c_int;
    pub fn aur_post_send(
        qp: *mut Qp,
        wr_id: u64,
        addr: *const c_void,
        len: u32,
        lkey: u32,
        inline_data: c_int,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    pub fn aur_post_write(
        qp: *mut Qp,
        wr_id: u64,
        addr: *const c_void,
        len: u32,
        lkey: u32,
        remote_addr: u64,
        rkey: u32,
        with_imm: c_int,
        imm_be: u32,
        inline_data: c_int,
    ) -> c_int;
}

/// The text of a completion status (`ibv_wc_status_str`).
pub fn wc_status_str(status: u32) -> &'static str {
    // SAFETY: ibv_wc_status_str returns a pointer to a static string for every value.
    unsafe { std::ffi::CStr::from_ptr(aur_wc_status_str(status)) }
        .to_str()
        .unwrap_or("unknown status")
}

/// errno after a failed call.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
