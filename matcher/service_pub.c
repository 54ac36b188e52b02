/* service_pub.c — builds the matcher service's market data: for each
 * command, one PUB message per topic its events name (market, account,
 * provider, clock), each carrying that command's events for the topic. */
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "matcher/service_pub.h"

#define TOPICS_PER_CMD 16

int service_pubs_init(service_pubs *p, uint64_t *dropped)
{
    p->msgs = calloc(SERVICE_PUBS_PER_BATCH, sizeof *p->msgs);
    p->n = 0;
    p->dropped = dropped;
    return p->msgs ? 0 : -1;
}

void service_pubs_free(service_pubs *p)
{
    for (uint32_t i = 0; p->msgs && i < p->n; i++)
        nng_msg_free(p->msgs[i]);
    free(p->msgs);
    p->msgs = NULL;
    p->n = 0;
}

void service_pubs_reset(service_pubs *p)
{
    GPUX_ASSERT(p->n == 0);
}

/* Topic of an event for market data, up to 3 (market, account, provider). */
static int event_topics(const wire_event *e, char topics[3][WIRE_TOPIC_MAX])
{
    int n = 0;
    switch (e->type) {
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED:
    case MATCHER_EV_DONE:
        wire_topic_market(topics[n++], e->market);
        wire_topic_account(topics[n++], e->account);
        break;
    case MATCHER_EV_TRADE:
        wire_topic_market(topics[n++], e->market);
        wire_topic_account(topics[n++], e->account);
        wire_topic_account(topics[n++], e->provider);
        break;
    case MATCHER_EV_LEASE:
        wire_topic_account(topics[n++], e->account);
        wire_topic_account(topics[n++], e->provider);
        break;
    case MATCHER_EV_BALANCE:
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
    case MATCHER_EV_ACCOUNT:
        wire_topic_account(topics[n++], e->account);
        break;
    case MATCHER_EV_CLOCK:
        memcpy(topics[n++], "clock.", 7);
        break;
    default: break;
    }
    return n;
}

typedef struct pub_set {
    char topic[TOPICS_PER_CMD][WIRE_TOPIC_MAX];
    nng_msg *msg[TOPICS_PER_CMD];
    uint32_t n;
} pub_set;

static void pub_flush(service_pubs *p, pub_set *ps)
{
    for (uint32_t i = 0; i < ps->n; i++) {
        if (p->n < SERVICE_PUBS_PER_BATCH) {
            p->msgs[p->n++] = ps->msg[i];
        } else {
            nng_msg_free(ps->msg[i]);
            (*p->dropped)++;
        }
    }
    ps->n = 0;
}

static void pub_add(service_pubs *p, pub_set *ps, const char *topic,
                    const wire_event *e)
{
    uint32_t i = 0;
    while (i < ps->n && strcmp(ps->topic[i], topic) != 0)
        i++;
    if (i == ps->n) {
        if (ps->n == TOPICS_PER_CMD)
            pub_flush(p, ps);
        i = ps->n;
        nng_msg *m;
        size_t tl = strlen(topic) + 1;
        if (nng_msg_alloc(&m, 0) != 0) {
            (*p->dropped)++;
            return;
        }
        uint8_t hdr[sizeof(wire_hdr)];
        GPUX_ASSERT(wire_pub_begin(hdr, sizeof hdr) == sizeof hdr);
        if (nng_msg_append(m, topic, tl) != 0 || nng_msg_append(m, hdr, sizeof hdr) != 0) {
            nng_msg_free(m);
            (*p->dropped)++;
            return;
        }
        memcpy(ps->topic[i], topic, tl);
        ps->msg[i] = m;
        ps->n++;
    }
    /* append one item and fix the header in place */
    nng_msg *m = ps->msg[i];
    size_t tl = strlen(topic) + 1;
    wire_item_hdr ih = {.type = WIRE_ITEM_EVENT, .size = sizeof(wire_event)};
    if (nng_msg_append(m, &ih, sizeof ih) != 0 || nng_msg_append(m, e, sizeof *e) != 0) {
        (*p->dropped)++;
        return;
    }
    uint8_t *body = nng_msg_body(m);
    wire_hdr h;
    memcpy(&h, body + tl, sizeof h);
    h.count++;
    h.body_len += (uint32_t)(sizeof ih + sizeof *e);
    memcpy(body + tl, &h, sizeof h);
}

void service_pubs_command(service_pubs *p, service *svc, const service_result *res)
{
    pub_set ps;
    ps.n = 0;
    for (uint64_t pos = res->ev_pos; pos < res->ev_pos + res->ev_count; pos++) {
        if (pos < service_events_first(svc))
            continue;
        const wire_event *e = service_event_at(svc, pos);
        char topics[3][WIRE_TOPIC_MAX];
        int nt = event_topics(e, topics);
        for (int t = 0; t < nt; t++)
            pub_add(p, &ps, topics[t], e);
    }
    pub_flush(p, &ps);
}

void service_pubs_end_batch(service_pubs *p)
{
    (void)p; /* each command's messages are complete when it is added */
}
