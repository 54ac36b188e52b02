/* order_entry.h — the order commands (new, cancel, replace), private to
 * the engine. Each validates fully, then rejects (one REJECTED event,
 * nothing changed) or applies and emits in market-rules.md order. */
#ifndef GPUX_ORDER_ENTRY_H
#define GPUX_ORDER_ENTRY_H

#include "matcher/engine_internal.h"

matcher_reason entry_new_order(matcher_engine *e, const matcher_cmd *c);
matcher_reason entry_cancel(matcher_engine *e, const matcher_cmd *c);
matcher_reason entry_replace(matcher_engine *e, const matcher_cmd *c);

/* Emits REJECTED for the current command and returns r. */
matcher_reason eng_reject(matcher_engine *e, matcher_reason r);

#endif
