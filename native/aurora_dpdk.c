/* See aurora_dpdk.h. */
#include "aurora_dpdk.h"

#include <errno.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_cycles.h>

int shim_eal_init(int argc, char **argv) {
    int rc = rte_eal_init(argc, argv);
    return rc < 0 ? -rte_errno : rc;
}

int shim_eal_cleanup(void) { return rte_eal_cleanup(); }

const char *shim_strerror(int errnum) { return rte_strerror(errnum); }

int shim_port_by_name(const char *name, uint16_t *port_id) {
    int rc = rte_eth_dev_get_port_by_name(name, port_id);
    return rc < 0 ? -ENODEV : 0;
}

uint16_t shim_port_count(void) { return rte_eth_dev_count_avail(); }

struct rte_mempool *shim_pool_create(const char *name, uint32_t count, uint16_t data_room,
                                     int socket) {
    /* RTE_PKTMBUF_HEADROOM in front of the data: headers could be prepended without a copy. */
    return rte_pktmbuf_pool_create(name, count, count >= 512 ? 256 : 0, 0,
                                   (uint16_t)(data_room + RTE_PKTMBUF_HEADROOM),
                                   socket < 0 ? (int)rte_socket_id() : socket);
}

void shim_pool_free(struct rte_mempool *pool) { rte_mempool_free(pool); }

int shim_errno(void) { return rte_errno; }

int shim_port_start(uint16_t port_id, struct rte_mempool *pool, uint16_t rx_desc,
                    uint16_t tx_desc, uint8_t mac[6], uint16_t *mtu) {
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    struct rte_ether_addr addr;
    int rc;

    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port_id, &info);
    if (rc < 0) return rc;
    rc = rte_eth_dev_configure(port_id, 1, 1, &conf);
    if (rc < 0) return rc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
    if (rc < 0) return rc;
    int socket = rte_eth_dev_socket_id(port_id);
    if (socket < 0) socket = (int)rte_socket_id();
    rc = rte_eth_rx_queue_setup(port_id, 0, rx_desc, (unsigned)socket, NULL, pool);
    if (rc < 0) return rc;
    rc = rte_eth_tx_queue_setup(port_id, 0, tx_desc, (unsigned)socket, NULL);
    if (rc < 0) return rc;
    rc = rte_eth_dev_start(port_id);
    if (rc < 0) return rc;
    /* Some vdevs (af_packet on a veth) deliver only to their own MAC unless promiscuous; our
     * own parser filters by MAC, IP and port anyway. Failure here is not fatal. */
    (void)rte_eth_promiscuous_enable(port_id);
    rc = rte_eth_macaddr_get(port_id, &addr);
    if (rc < 0) return rc;
    memcpy(mac, addr.addr_bytes, 6);
    rc = rte_eth_dev_get_mtu(port_id, mtu);
    if (rc < 0) *mtu = RTE_ETHER_MTU;
    return 0;
}

int shim_port_wait_link(uint16_t port_id, uint32_t timeout_ms) {
    struct rte_eth_link link;
    for (uint32_t waited = 0; waited <= timeout_ms; waited += 10) {
        memset(&link, 0, sizeof(link));
        if (rte_eth_link_get_nowait(port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
            return 1;
        rte_delay_ms(10);
    }
    return 0;
}

int shim_port_stop(uint16_t port_id) {
    int rc = rte_eth_dev_stop(port_id);
    if (rc < 0) return rc;
    return rte_eth_dev_close(port_id);
}

uint16_t shim_rx_burst(uint16_t port_id, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_rx_burst(port_id, 0, pkts, n);
}

uint16_t shim_tx_burst(uint16_t port_id, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_tx_burst(port_id, 0, pkts, n);
}

struct rte_mbuf *shim_mbuf_alloc(struct rte_mempool *pool, uint16_t len, uint8_t **data) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
    if (m == NULL) return NULL;
    char *p = rte_pktmbuf_append(m, len);
    if (p == NULL) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    *data = (uint8_t *)p;
    return m;
}

void shim_mbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

const uint8_t *shim_mbuf_data(const struct rte_mbuf *m, uint16_t *len, uint16_t *segs) {
    *len = m->data_len;
    *segs = m->nb_segs;
    return rte_pktmbuf_mtod(m, const uint8_t *);
}

int shim_port_stats(uint16_t port_id, struct shim_port_stats *out) {
    struct rte_eth_stats s;
    int rc = rte_eth_stats_get(port_id, &s);
    if (rc < 0) return rc;
    out->ipackets = s.ipackets;
    out->opackets = s.opackets;
    out->ierrors = s.ierrors;
    out->oerrors = s.oerrors;
    out->imissed = s.imissed;
    out->rx_nombuf = s.rx_nombuf;
    return 0;
}
