/* fuzz_wire.c — libFuzzer target for every wire decoder.
 *
 * Any input must decode to a valid struct or fail with a reason; it must
 * never crash, read out of bounds (ASan) or hit undefined behaviour (UBSan).
 * A message that decodes must re-encode to the same bytes (commands and
 * queries), so the decoder accepts nothing the encoder would not write.
 * Built by `make fuzz-build`, run briefly by tests/test_matcher_fuzz.sh and
 * longer by `make fuzz`. */
#include <stdint.h>
#include <string.h>

#include "gpux_assert.h"
#include "gpux_wire.h"
#include "matcher/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(wire_reader *rd)
{
    char err[160];
    wire_item it;
    uint16_t type;
    for (uint32_t n = 0; n <= WIRE_MAX_ITEMS; n++)
        if (wire_reader_next(rd, &type, &it, err, sizeof err) != 1)
            return;
    GPUX_ASSERT(0 && "reader returned more items than the limit");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    wire_cmd c;
    if (wire_decode_cmd(data, size, &c, err, sizeof err) == 0) {
        uint8_t out[sizeof(wire_hdr) + sizeof(wire_cmd)];
        size_t n = wire_encode_cmd(out, sizeof out, &c);
        GPUX_ASSERT(n == size && memcmp(out, data, n) == 0);
        journal_record rec;
        journal_record_encode(&rec, 1, &c);
        GPUX_ASSERT(journal_record_check(&rec, err, sizeof err) == 0);
    }
    static wire_cmd batch[WIRE_MAX_BATCH_CMDS];
    uint32_t nb;
    if (wire_decode_cmds(data, size, batch, WIRE_MAX_BATCH_CMDS, &nb, err, sizeof err) == 0) {
        static uint8_t out[sizeof(wire_hdr) + WIRE_MAX_BATCH_CMDS * sizeof(wire_cmd)];
        size_t n = wire_encode_cmds(out, sizeof out, batch, nb);
        GPUX_ASSERT(n == size && memcmp(out, data, n) == 0);
    }
    wire_query q;
    if (wire_decode_query(data, size, &q, err, sizeof err) == 0) {
        uint8_t out[sizeof(wire_hdr) + sizeof(wire_query)];
        size_t n = wire_encode_query(out, sizeof out, &q);
        GPUX_ASSERT(n == size && memcmp(out, data, n) == 0);
    }
    wire_reply r;
    wire_reader rd;
    if (wire_decode_reply(data, size, &r, &rd, err, sizeof err) == 0)
        drain(&rd);
    size_t off = wire_pub_split(data, size);
    if (off > 0 && wire_decode_pub(data + off, size - off, &rd, err, sizeof err) == 0)
        drain(&rd);
    if (size >= sizeof(journal_record)) {
        journal_record jr;
        memcpy(&jr, data, sizeof jr);
        (void)journal_record_check(&jr, err, sizeof err);
    }
    return 0;
}
