/* service_pub.h — the matcher service's market data (PUB messages).
 *
 * The engine thread builds a batch's PUB messages while it applies the
 * batch's commands; the sender thread sends them once the batch is durable
 * (published only after the journal has the commands): one message per
 * batch, not per command. Message format: include/gpux_wire.h, "market
 * data". */
#ifndef GPUX_SERVICE_PUB_H
#define GPUX_SERVICE_PUB_H

#include <stdint.h>

#include <nng/nng.h>

#include "matcher/service.h"

#define SERVICE_PUBS_PER_BATCH 65536 /* messages per batch (each up to
                                        WIRE_PUB_MAX_EVENTS events); more
                                        are dropped */

/* Bytes of the build buffer: the topic and one PUB message of at most
 * WIRE_PUB_MAX_EVENTS events. */
#define SERVICE_PUBS_BUILD_BYTES                                                   \
    (sizeof WIRE_PUB_TOPIC + sizeof(wire_hdr) +                                    \
     (size_t)WIRE_PUB_MAX_EVENTS * (sizeof(wire_item_hdr) + sizeof(wire_event)))

/* One batch's market data. msgs[0..n) are ready to send; the sender takes
 * them (and sets n to 0). Everything else is the builder's own state:
 * the message being built lives in buf (allocated at init) until the
 * batch ends or it is full. */
typedef struct service_pubs {
    nng_msg **msgs;
    uint32_t n;
    uint64_t *dropped; /* counter shared by the batches (engine thread) */
    uint8_t *buf;      /* topic + PUB message being built: the caller's
                          build buffer, shared by every batch */
    size_t len;        /* bytes in buf */
    uint32_t count;    /* events in buf */
} service_pubs;

/* Allocates the message array (at init, not per batch). build_buf
 * (SERVICE_PUBS_BUILD_BYTES, owned by the caller) may be shared by every
 * batch built by the same thread, one batch at a time. dropped counts
 * messages that could not be built or kept. Returns 0, or -1 out of
 * memory (then call service_pubs_free). */
int service_pubs_init(service_pubs *p, uint64_t *dropped, uint8_t *build_buf);

/* Frees messages still held, and the array. Safe on a zeroed struct. */
void service_pubs_free(service_pubs *p);

/* Starts a batch: the previous batch's messages must have been taken. */
void service_pubs_reset(service_pubs *p);

/* Adds the market data of one applied command (its events, read from the
 * service's event ring) to the batch's message. Engine thread only. */
void service_pubs_command(service_pubs *p, service *svc, const service_result *res);

/* Ends the batch: closes the message being built; after this
 * msgs[0..n) is complete. Engine thread. */
void service_pubs_end_batch(service_pubs *p);

#endif
