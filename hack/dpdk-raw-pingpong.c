/*
 * Raw DPDK ping-pong: the floor Aurora's DPDK transport is measured against (hack/bench-dpdk.sh).
 *
 * The client sends one Ethernet frame of --frame-bytes carrying a sequence number, spins on
 * rte_eth_rx_burst until the echo arrives, checks the sequence number and records the round trip
 * with rte_rdtsc. The server echoes every frame back unchanged (same mbuf). No headers are built
 * or checked, no reliability, no copies: the least work that moves the same bytes over the same
 * device. --yield gives the CPU away between empty polls, like Aurora's non-spinning mode.
 *
 * Usage: dpdk-raw-pingpong <EAL args> -- --role client|server [--frame-bytes N]
 *        [--round-trips N] [--warmup N] [--yield]
 * Prints one JSON line (client) with p50/p99/p999 in nanoseconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, int err) {
    fprintf(stderr, "dpdk-raw-pingpong: %s: %s\n", what, rte_strerror(err < 0 ? -err : err));
    exit(1);
}

int main(int argc, char **argv) {
    int rc = rte_eal_init(argc, argv);
    if (rc < 0) die("rte_eal_init", rte_errno);
    argc -= rc;
    argv += rc;
    int client = -1, yield = 0;
    uint32_t frame_bytes = 182;
    uint64_t round_trips = 100000, warmup = 10000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            client = !strcmp(argv[++i], "client");
        } else if (!strcmp(argv[i], "--frame-bytes") && i + 1 < argc) {
            frame_bytes = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--round-trips") && i + 1 < argc) {
            round_trips = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
            warmup = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--yield")) {
            yield = 1;
        } else {
            fprintf(stderr, "dpdk-raw-pingpong: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (client < 0 || frame_bytes < 60 || frame_bytes > 1514) {
        fprintf(stderr, "dpdk-raw-pingpong: need --role client|server, 60 <= frame-bytes <= 1514\n");
        return 2;
    }
    if (rte_eth_dev_count_avail() != 1) {
        fprintf(stderr, "dpdk-raw-pingpong: expected exactly one port (one --vdev)\n");
        return 1;
    }
    uint16_t port = 0;
    struct rte_mempool *pool =
        rte_pktmbuf_pool_create("raw_pool", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (pool == NULL) die("rte_pktmbuf_pool_create", rte_errno);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if ((rc = rte_eth_dev_configure(port, 1, 1, &conf)) < 0) die("configure", rc);
    uint16_t rxd = 1024, txd = 1024;
    if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd)) < 0) die("adjust desc", rc);
    if ((rc = rte_eth_rx_queue_setup(port, 0, rxd, rte_socket_id(), NULL, pool)) < 0) die("rxq", rc);
    if ((rc = rte_eth_tx_queue_setup(port, 0, txd, rte_socket_id(), NULL)) < 0) die("txq", rc);
    if ((rc = rte_eth_dev_start(port)) < 0) die("start", rc);
    struct rte_eth_link link;
    for (int waited = 0;; waited += 10) {
        memset(&link, 0, sizeof(link));
        rte_eth_link_get_nowait(port, &link);
        if (link.link_status == RTE_ETH_LINK_UP) break;
        if (waited > 30000) die("link did not come up", ETIMEDOUT);
        rte_delay_ms(10);
    }
    uint64_t total = warmup + round_trips;
    struct rte_mbuf *pkts[32];
    if (!client) {
        for (uint64_t echoed = 0; echoed < total;) {
            uint16_t n = rte_eth_rx_burst(port, 0, pkts, 32);
            if (n == 0) {
                if (yield) sched_yield();
                continue;
            }
            uint16_t sent = 0;
            while (sent < n) sent += rte_eth_tx_burst(port, 0, pkts + sent, n - sent);
            echoed += n;
        }
        /* Let the last echo leave the device before the port goes away. */
        rte_delay_ms(200);
        rte_eth_dev_stop(port);
        rte_eal_cleanup();
        return 0;
    }
    uint64_t *rtt = malloc(sizeof(uint64_t) * (round_trips ? round_trips : 1));
    if (rtt == NULL) die("malloc", ENOMEM);
    uint64_t hz = rte_get_tsc_hz();
    for (uint64_t i = 0; i < total; i++) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
        if (m == NULL) die("mbuf alloc", ENOMEM);
        uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)frame_bytes);
        memset(p, 0, frame_bytes);
        memset(p, 0xff, 6);           /* broadcast destination */
        p[6] = 0x02;                  /* locally administered source */
        p[12] = 0x88; p[13] = 0xb5;   /* local experimental ethertype */
        memcpy(p + 14, &i, sizeof(i));
        uint64_t t0 = rte_rdtsc();
        while (rte_eth_tx_burst(port, 0, &m, 1) == 0) {}
        for (;;) {
            uint16_t n = rte_eth_rx_burst(port, 0, pkts, 1);
            if (n == 0) {
                if (yield) sched_yield();
                if (rte_rdtsc() - t0 > 10 * hz) die("round trip timed out", ETIMEDOUT);
                continue;
            }
            uint64_t seq;
            memcpy(&seq, rte_pktmbuf_mtod(pkts[0], uint8_t *) + 14, sizeof(seq));
            rte_pktmbuf_free(pkts[0]);
            if (seq != i) {
                fprintf(stderr, "dpdk-raw-pingpong: expected %" PRIu64 ", got %" PRIu64 "\n", i, seq);
                return 1;
            }
            break;
        }
        uint64_t t1 = rte_rdtsc();
        if (i >= warmup) rtt[i - warmup] = (t1 - t0) * 1000000000ull / hz;
    }
    qsort(rtt, round_trips, sizeof(uint64_t), cmp_u64);
    printf("{\"impl\":\"raw\",\"frame_bytes\":%u,\"round_trips\":%" PRIu64 ",\"p50_ns\":%" PRIu64
           ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64 ",\"yield\":%s}\n",
           frame_bytes, round_trips, rtt[round_trips / 2], rtt[round_trips * 99 / 100],
           rtt[round_trips * 999 / 1000], yield ? "true" : "false");
    free(rtt);
    rte_eth_dev_stop(port);
    rte_eal_cleanup();
    return 0;
}
