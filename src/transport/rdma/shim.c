/* The verbs and rdma_cm calls Aurora's RDMA transport makes, behind a flat C ABI.
 *
 * Why a shim instead of Rust declarations of the verbs structs: the fast-path verbs
 * (ibv_post_send, ibv_post_recv, ibv_poll_cq, ibv_req_notify_cq) are static inline functions in
 * <infiniband/verbs.h> that call through the provider's function table, so they exist only when
 * compiled against the installed headers; and the work-request, completion and rdma_cm structs are
 * large unions whose layout the headers own. Compiling this file against the system's
 * libibverbs-dev/librdmacm-dev gives exactly the ABI of the installed rdma-core, and Rust sees only
 * opaque pointers and the small flat structs below. Every function returns 0 or a pointer on
 * success and sets errno on failure, like the verbs it wraps. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* Keep in sync with ffi.rs. */
struct aur_wc {
    uint64_t wr_id;
    uint32_t status;
    uint32_t opcode;
    uint32_t byte_len;
    uint32_t imm_be;
    uint32_t has_imm;
    uint32_t qp_num;
};

struct aur_cm_event {
    uint32_t kind;
    int32_t status;
    struct rdma_cm_id *id;
    struct rdma_cm_id *listen_id;
    uint64_t id_context;
    uint32_t private_data_len;
    uint8_t private_data[56];
};

struct rdma_event_channel *aur_cm_channel_create(void) {
    struct rdma_event_channel *ch = rdma_create_event_channel();
    if (!ch) return NULL;
    int flags = fcntl(ch->fd, F_GETFL);
    if (flags < 0 || fcntl(ch->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int saved = errno;
        rdma_destroy_event_channel(ch);
        errno = saved;
        return NULL;
    }
    return ch;
}

void aur_cm_channel_destroy(struct rdma_event_channel *ch) { rdma_destroy_event_channel(ch); }
int aur_cm_channel_fd(struct rdma_event_channel *ch) { return ch->fd; }

/* Takes one event without blocking (-1 with EAGAIN when there is none) and acknowledges it at
 * once: everything the caller needs is copied out, and an acknowledged event never blocks a later
 * rdma_destroy_id. */
int aur_cm_get_event(struct rdma_event_channel *ch, struct aur_cm_event *out) {
    struct rdma_cm_event *ev;
    if (rdma_get_cm_event(ch, &ev)) return -1;
    memset(out, 0, sizeof(*out));
    out->kind = ev->event;
    out->status = ev->status;
    out->id = ev->id;
    out->listen_id = ev->listen_id;
    out->id_context = (uint64_t)(uintptr_t)ev->id->context;
    if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST && ev->param.conn.private_data) {
        uint32_t n = ev->param.conn.private_data_len;
        if (n > sizeof(out->private_data)) n = sizeof(out->private_data);
        memcpy(out->private_data, ev->param.conn.private_data, n);
        out->private_data_len = n;
    }
    rdma_ack_cm_event(ev);
    return 0;
}

struct rdma_cm_id *aur_cm_id_create(struct rdma_event_channel *ch, uint64_t context) {
    struct rdma_cm_id *id;
    if (rdma_create_id(ch, &id, (void *)(uintptr_t)context, RDMA_PS_TCP)) return NULL;
    return id;
}

void aur_cm_id_set_context(struct rdma_cm_id *id, uint64_t context) { id->context = (void *)(uintptr_t)context; }
int aur_cm_id_destroy(struct rdma_cm_id *id) { return rdma_destroy_id(id); }

static void ipv4(struct sockaddr_in *sa, uint32_t addr_be, uint16_t port) {
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = addr_be;
    sa->sin_port = htons(port);
}

int aur_cm_listen(struct rdma_cm_id *id, uint32_t addr_be, uint16_t port, int backlog) {
    struct sockaddr_in sa;
    ipv4(&sa, addr_be, port);
    if (rdma_bind_addr(id, (struct sockaddr *)&sa)) return -1;
    return rdma_listen(id, backlog);
}

uint16_t aur_cm_local_port(struct rdma_cm_id *id) { return ntohs(rdma_get_src_port(id)); }

int aur_cm_resolve_addr(struct rdma_cm_id *id, uint32_t src_be, uint32_t dst_be, uint16_t port, int timeout_ms) {
    struct sockaddr_in src, dst;
    ipv4(&src, src_be, 0);
    ipv4(&dst, dst_be, port);
    return rdma_resolve_addr(id, (struct sockaddr *)&src, (struct sockaddr *)&dst, timeout_ms);
}

int aur_cm_resolve_route(struct rdma_cm_id *id, int timeout_ms) { return rdma_resolve_route(id, timeout_ms); }

/* An RC queue pair on `id` whose send and receive completions both go to `cq`. */
struct ibv_qp *aur_cm_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *cq,
                                uint32_t send_depth, uint32_t recv_depth, uint32_t max_inline) {
    struct ibv_qp_init_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.send_cq = cq;
    attr.recv_cq = cq;
    attr.qp_type = IBV_QPT_RC;
    attr.cap.max_send_wr = send_depth;
    attr.cap.max_recv_wr = recv_depth;
    attr.cap.max_send_sge = 1;
    attr.cap.max_recv_sge = 1;
    attr.cap.max_inline_data = max_inline;
    attr.sq_sig_all = 0;
    if (rdma_create_qp(id, pd, &attr)) return NULL;
    return id->qp;
}

void aur_cm_destroy_qp(struct rdma_cm_id *id) { rdma_destroy_qp(id); }

/* The local ACK timeout exponent (4.096 us * 2^exp per try) of the id's QP. */
int aur_cm_set_ack_timeout(struct rdma_cm_id *id, uint8_t exp) {
    return rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &exp, sizeof(exp));
}

static void conn_param(struct rdma_conn_param *p, const void *data, uint8_t len) {
    memset(p, 0, sizeof(*p));
    p->private_data = data;
    p->private_data_len = len;
    p->responder_resources = 1;
    p->initiator_depth = 1;
    /* 6, not 7: rxe (like the spec for RNR, unlike it for transport retries) treats 7 as
     * "retry forever", and a dead peer must become an error completion. */
    p->retry_count = 6;
    p->rnr_retry_count = 7; /* infinite: a sender waits for the receiver to re-post */
}

int aur_cm_connect(struct rdma_cm_id *id, const void *data, uint8_t len) {
    struct rdma_conn_param p;
    conn_param(&p, data, len);
    return rdma_connect(id, &p);
}

int aur_cm_accept(struct rdma_cm_id *id) {
    struct rdma_conn_param p;
    conn_param(&p, NULL, 0);
    return rdma_accept(id, &p);
}

int aur_cm_reject(struct rdma_cm_id *id) { return rdma_reject(id, NULL, 0); }
int aur_cm_disconnect(struct rdma_cm_id *id) { return rdma_disconnect(id); }

/* The rdma_cm-owned verbs context of the device called `name` (rdma_cm's own contexts must be
 * used: a QP on an rdma_cm id needs a PD from the id's context). NULL with ENODEV if absent. */
struct ibv_context *aur_device_open(const char *name) {
    int n = 0;
    struct ibv_context **list = rdma_get_devices(&n);
    if (!list) return NULL;
    struct ibv_context *found = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(ibv_get_device_name(list[i]->device), name) == 0) found = list[i];
    }
    rdma_free_devices(list);
    if (!found) errno = ENODEV;
    return found;
}

struct ibv_pd *aur_pd_alloc(struct ibv_context *ctx) { return ibv_alloc_pd(ctx); }
int aur_pd_dealloc(struct ibv_pd *pd) { return ibv_dealloc_pd(pd); }

struct ibv_mr *aur_mr_reg(struct ibv_pd *pd, void *addr, size_t len, int remote_write) {
    int access = IBV_ACCESS_LOCAL_WRITE;
    if (remote_write) access |= IBV_ACCESS_REMOTE_WRITE;
    return ibv_reg_mr(pd, addr, len, access);
}
int aur_mr_dereg(struct ibv_mr *mr) { return ibv_dereg_mr(mr); }
uint32_t aur_mr_lkey(struct ibv_mr *mr) { return mr->lkey; }
uint32_t aur_mr_rkey(struct ibv_mr *mr) { return mr->rkey; }

struct ibv_comp_channel *aur_comp_channel_create(struct ibv_context *ctx) {
    struct ibv_comp_channel *ch = ibv_create_comp_channel(ctx);
    if (!ch) return NULL;
    int flags = fcntl(ch->fd, F_GETFL);
    if (flags < 0 || fcntl(ch->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int saved = errno;
        ibv_destroy_comp_channel(ch);
        errno = saved;
        return NULL;
    }
    return ch;
}
int aur_comp_channel_destroy(struct ibv_comp_channel *ch) { return ibv_destroy_comp_channel(ch); }
int aur_comp_channel_fd(struct ibv_comp_channel *ch) { return ch->fd; }

struct ibv_cq *aur_cq_create(struct ibv_context *ctx, int cqe, struct ibv_comp_channel *ch) {
    return ibv_create_cq(ctx, cqe, NULL, ch, 0);
}
int aur_cq_destroy(struct ibv_cq *cq) { return ibv_destroy_cq(cq); }
int aur_cq_req_notify(struct ibv_cq *cq) { return ibv_req_notify_cq(cq, 0); }

/* Consumes a pending notification, if any (0 consumed, -1/EAGAIN none). */
int aur_cq_take_notification(struct ibv_comp_channel *ch) {
    struct ibv_cq *cq;
    void *ctx;
    if (ibv_get_cq_event(ch, &cq, &ctx)) return -1;
    ibv_ack_cq_events(cq, 1);
    return 0;
}

/* Polls at most `max` (<= 32) completions into `out`; returns how many, or -1. */
int aur_cq_poll(struct ibv_cq *cq, int max, struct aur_wc *out) {
    struct ibv_wc wc[32];
    if (max > 32) max = 32;
    int n = ibv_poll_cq(cq, max, wc);
    for (int i = 0; i < n; i++) {
        out[i].wr_id = wc[i].wr_id;
        out[i].status = wc[i].status;
        out[i].opcode = wc[i].opcode;
        out[i].byte_len = wc[i].byte_len;
        out[i].has_imm = (wc[i].wc_flags & IBV_WC_WITH_IMM) != 0;
        out[i].imm_be = out[i].has_imm ? wc[i].imm_data : 0;
        out[i].qp_num = wc[i].qp_num;
    }
    return n;
}

const char *aur_wc_status_str(uint32_t status) { return ibv_wc_status_str((enum ibv_wc_status)status); }

int aur_post_recv(struct ibv_qp *qp, uint64_t wr_id, void *addr, uint32_t len, uint32_t lkey) {
    struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = lkey};
    struct ibv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = len ? 1 : 0};
    struct ibv_recv_wr *bad;
    int rc = ibv_post_recv(qp, &wr, &bad);
    if (rc) errno = rc;
    return rc ? -1 : 0;
}

/* SEND of `len` bytes at `addr` (signaled: its completion returns the buffer). */
int aur_post_send(struct ibv_qp *qp, uint64_t wr_id, const void *addr, uint32_t len, uint32_t lkey, int inline_data) {
    struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = lkey};
    struct ibv_send_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
                             .send_flags = IBV_SEND_SIGNALED | (inline_data ? IBV_SEND_INLINE : 0)};
    struct ibv_send_wr *bad;
    int rc = ibv_post_send(qp, &wr, &bad);
    if (rc) errno = rc;
    return rc ? -1 : 0;
}

/* RDMA WRITE of local [addr, addr+len) to remote_addr under rkey; with_imm also consumes a receive
 * at the target and delivers imm_be there (signaled). */
int aur_post_write(struct ibv_qp *qp, uint64_t wr_id, const void *addr, uint32_t len, uint32_t lkey,
                   uint64_t remote_addr, uint32_t rkey, int with_imm, uint32_t imm_be, int inline_data) {
    struct ibv_sge sge = {.addr = (uintptr_t)addr, .length = len, .lkey = lkey};
    struct ibv_send_wr wr;
    memset(&wr, 0, sizeof(wr));
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = with_imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
    wr.send_flags = IBV_SEND_SIGNALED | (inline_data ? IBV_SEND_INLINE : 0);
    wr.imm_data = imm_be;
    wr.wr.rdma.remote_addr = remote_addr;
    wr.wr.rdma.rkey = rkey;
    struct ibv_send_wr *bad;
    int rc = ibv_post_send(qp, &wr, &bad);
    if (rc) errno = rc;
    return rc ? -1 : 0;
}
