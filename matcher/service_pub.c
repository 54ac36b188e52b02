/* service_pub.c — builds the matcher service's market data: one PUB
 * message (topic WIRE_PUB_TOPIC) per batch holding every event of the
 * batch's commands, each once, in seq order (include/gpux_wire.h, "market
 * data").
 *
 * Why one message per batch: every nng message costs each subscriber a
 * hand-off between nng's task threads (mutex, condition variable, a wake-
 * up). With one message per command and topic (2-3 per order) the gateway
 * spent most of its market-data CPU in those hand-offs during a simulated
 * day; per batch it is one message for tens to hundreds of commands.
 *
 * How: the events are written into a build buffer (one per service: the
 * engine thread builds one batch at a time, and each message is copied out
 * before the batch ends);
 * a message is cut when the next command would not fit in
 * WIRE_PUB_MAX_EVENTS (so a message ends on a command boundary unless it
 * is full) and at the end of the batch, and only then copied into an nng
 * message. A command with more events than a message holds is split over
 * consecutive messages at the limit. */
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "matcher/service_pub.h"

#define ITEM_BYTES (sizeof(wire_item_hdr) + sizeof(wire_event))
#define TOPIC_BYTES (sizeof WIRE_PUB_TOPIC) /* with its NUL */
#define SCRATCH_BYTES SERVICE_PUBS_BUILD_BYTES

_Static_assert(SCRATCH_BYTES <= 1024 * 1024,
               "a PUB message must fit nng's default receive limit (1 MiB)");
_Static_assert(WIRE_PUB_MAX_EVENTS <= WIRE_MAX_ITEMS, "PUB message item limit");

int service_pubs_init(service_pubs *p, uint64_t *dropped, uint8_t *build_buf)
{
    GPUX_ASSERT(build_buf != NULL);
    p->msgs = calloc(SERVICE_PUBS_PER_BATCH, sizeof *p->msgs);
    p->n = 0;
    p->dropped = dropped;
    p->buf = build_buf;
    p->len = 0;
    p->count = 0;
    return p->msgs ? 0 : -1;
}

void service_pubs_free(service_pubs *p)
{
    for (uint32_t i = 0; p->msgs && i < p->n; i++)
        nng_msg_free(p->msgs[i]);
    free(p->msgs);
    p->msgs = NULL;
    p->buf = NULL;
    p->n = 0;
}

void service_pubs_reset(service_pubs *p)
{
    GPUX_ASSERT(p->n == 0);
    GPUX_ASSERT(p->count == 0);
    p->len = 0;
}

/* Starts a message in the scratch buffer: topic, NUL, PUB header. */
static void msg_begin(service_pubs *p)
{
    memcpy(p->buf, WIRE_PUB_TOPIC, TOPIC_BYTES);
    size_t n = wire_pub_begin(p->buf + TOPIC_BYTES, SCRATCH_BYTES - TOPIC_BYTES);
    GPUX_ASSERT(n == sizeof(wire_hdr));
    p->len = TOPIC_BYTES + sizeof(wire_hdr);
    p->count = 0;
}

/* Closes the message being built (if it has events): its header gets the
 * count, the bytes go into one nng message. */
static void msg_end(service_pubs *p)
{
    if (p->count == 0)
        return;
    wire_hdr h;
    memcpy(&h, p->buf + TOPIC_BYTES, sizeof h);
    h.count = p->count;
    h.body_len = (uint32_t)(p->len - TOPIC_BYTES - sizeof h);
    memcpy(p->buf + TOPIC_BYTES, &h, sizeof h);
    nng_msg *m = NULL;
    if (p->n == SERVICE_PUBS_PER_BATCH || nng_msg_alloc(&m, p->len) != 0) {
        (*p->dropped)++;
    } else {
        memcpy(nng_msg_body(m), p->buf, p->len);
        p->msgs[p->n++] = m;
    }
    p->count = 0;
    p->len = 0;
}

static void msg_add(service_pubs *p, const wire_event *e)
{
    if (p->count == WIRE_PUB_MAX_EVENTS)
        msg_end(p);
    if (p->count == 0)
        msg_begin(p);
    GPUX_ASSERT(p->len + ITEM_BYTES <= SCRATCH_BYTES);
    wire_item_hdr ih = {.type = WIRE_ITEM_EVENT, .size = sizeof(wire_event)};
    memcpy(p->buf + p->len, &ih, sizeof ih);
    memcpy(p->buf + p->len + sizeof ih, e, sizeof *e);
    p->len += ITEM_BYTES;
    p->count++;
}

void service_pubs_command(service_pubs *p, service *svc, const service_result *res)
{
    uint64_t first = service_events_first(svc);
    uint64_t pos = res->ev_pos < first ? first : res->ev_pos;
    uint64_t end = res->ev_pos + res->ev_count;
    if (pos >= end)
        return;
    /* whole commands per message: cut before one that does not fit */
    if (p->count > 0 && p->count + (end - pos) > WIRE_PUB_MAX_EVENTS)
        msg_end(p);
    for (; pos < end; pos++)
        msg_add(p, service_event_at(svc, pos));
}

void service_pubs_end_batch(service_pubs *p)
{
    msg_end(p);
}
