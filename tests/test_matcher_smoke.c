/* test_matcher_smoke.c — the build and runner themselves work. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "matcher/matcher.h"
#include <string.h>

static void test_reason_codes(void **state)
{
    (void)state;
    assert_string_equal(matcher_reason_code(MATCHER_REJ_BAD_QTY), "bad_qty");
    assert_string_equal(matcher_reason_code(MATCHER_REJ_WOULD_MATCH), "would_match");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reason_codes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
