/*
 * Aurora's DPDK shim: the few DPDK calls Aurora needs, as real (non-inline) functions that bindgen
 * can bind. DPDK's fast path (rte_eth_rx_burst, rte_pktmbuf_alloc, ...) is static inline in its
 * headers and rte_errno is a per-lcore macro, so Rust cannot call them directly. Port setup lives
 * here too: struct rte_eth_conf is large and version-dependent, and filling it in C keeps the
 * Rust side free of DPDK's struct layouts.
 *
 * Every function returns 0 / a count on success and a negative errno on failure unless noted.
 */
#ifndef AURORA_DPDK_H
#define AURORA_DPDK_H

#include <stdint.h>
#include <stddef.h>

struct rte_mbuf;
struct rte_mempool;

/* rte_eal_init; returns the number of parsed args or -rte_errno. */
int shim_eal_init(int argc, char **argv);
/* rte_eal_cleanup. */
int shim_eal_cleanup(void);
/* The message for an errno value (DPDK's own codes included). */
const char *shim_strerror(int errnum);

/* Port id of the device named `name` (e.g. "net_memif0"), or -ENODEV. */
int shim_port_by_name(const char *name, uint16_t *port_id);
/* Ports EAL probed. */
uint16_t shim_port_count(void);

/* A packet mempool of `count` mbufs with `data_room` bytes each on `socket` (-1: any). NULL on
 * failure (shim_errno() says why). */
struct rte_mempool *shim_pool_create(const char *name, uint32_t count, uint16_t data_room,
                                     int socket);
void shim_pool_free(struct rte_mempool *pool);
int shim_errno(void);

/* Configures one RX and one TX queue of `rx_desc`/`tx_desc` descriptors, starts the port, reads its
 * MAC into `mac` and its MTU into `mtu`. */
int shim_port_start(uint16_t port_id, struct rte_mempool *pool, uint16_t rx_desc,
                    uint16_t tx_desc, uint8_t mac[6], uint16_t *mtu);
/* Waits up to `timeout_ms` for link up; 1 up, 0 still down. */
int shim_port_wait_link(uint16_t port_id, uint32_t timeout_ms);
int shim_port_stop(uint16_t port_id);

/* Fast path. */
uint16_t shim_rx_burst(uint16_t port_id, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_tx_burst(uint16_t port_id, struct rte_mbuf **pkts, uint16_t n);
/* An mbuf holding `len` bytes (data_len = pkt_len = len) and a pointer to them; NULL if the pool is
 * empty or len exceeds the data room. */
struct rte_mbuf *shim_mbuf_alloc(struct rte_mempool *pool, uint16_t len, uint8_t **data);
void shim_mbuf_free(struct rte_mbuf *m);
/* The first segment's bytes; `*len` gets its length. Multi-segment mbufs report only segment 1 and
 * set *segs > 1 so the caller can drop them. */
const uint8_t *shim_mbuf_data(const struct rte_mbuf *m, uint16_t *len, uint16_t *segs);

/* Device counters. */
struct shim_port_stats {
    uint64_t ipackets, opackets, ierrors, oerrors, imissed, rx_nombuf;
};
int shim_port_stats(uint16_t port_id, struct shim_port_stats *out);

#endif
