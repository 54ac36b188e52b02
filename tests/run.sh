#!/bin/sh
# run.sh — runs every test program and shell test under each build flavour
# (rel, then san = ASan+UBSan), counts TAP results and ends with exactly one
# line "N passed, N failed". Exit status 0 only when nothing failed.
#   GPUX_TESTS=regex   run only the tests whose name matches
#   FLAVOURS="rel"     run only these flavours
#   GPUX_TEST_TIMEOUT_S=N  longest a test program may run (default 600)
# Logs: build/<flavour>/test-logs/<name>.log
# It does not build anything (`make test` builds, then runs it): run by hand
# after an edit, it warns about a test program older than a library it links.
FLAVOURS=${FLAVOURS:-"rel san"}
passed=0
failed=0
top=$(pwd)
for fl in $FLAVOURS; do
    logdir="build/$fl/test-logs"
    mkdir -p "$logdir"
    for t in build/$fl/tests/test_* tests/test_*.sh; do
        [ -e "$t" ] || continue
        case "$t" in *.d|*.o) continue ;; esac
        name=$(basename "$t")
        if [ -n "$GPUX_TESTS" ] && ! echo "$name" | grep -Eq "$GPUX_TESTS"; then continue; fi
        log="$logdir/$name.log"
        case "$t" in
            *.sh) ;;
            *) # the Makefile's link sets: test_M_* links libgpux_M and
               # libgpux_matcher when M is a module, else every library
               mod=$(echo "$name" | cut -d_ -f2)
               libs="build/$fl/lib/libgpux_$mod.a build/$fl/lib/libgpux_matcher.a"
               [ -e "build/$fl/lib/libgpux_$mod.a" ] || libs="build/$fl/lib/libgpux_*.a"
               newer=$(find $libs -newer "$t" 2>/dev/null | head -1)
               [ -z "$newer" ] || echo "run.sh: warning: $t is older than $newer: it tests old code (run 'make $fl' first)" >&2 ;;
        esac
        start=$(date +%s)
        case "$t" in
            *.sh) cmd="sh $t" ;;
            *) cmd="$t" ;;
        esac
        # A hung program is a failure within bounds, never a stalled suite.
        GPUX_FLAVOUR=$fl GPUX_BIN="$top/build/$fl/bin" GPUX_ROOT="$top" \
        CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            timeout -k 10 "${GPUX_TEST_TIMEOUT_S:-600}" $cmd </dev/null >"$log" 2>&1
        rc=$?
        ok=$(grep -c '^ok ' "$log")
        nok=$(grep -c '^not ok ' "$log")
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "  (timed out)" >>"$log"; fi
        if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; fi
        if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "  (no test result reported)" >>"$log"; fi
        secs=$(( $(date +%s) - start ))
        passed=$((passed + ok))
        failed=$((failed + nok))
        if [ "$nok" -eq 0 ]; then
            echo "PASS $fl/$name: $ok ok (${secs}s)"
        else
            echo "FAIL $fl/$name: $ok ok, $nok failed, exit $rc (${secs}s) — log $log"
            grep -E '^not ok|ERROR|error|FAIL|assert|Sanitizer|runtime error' "$log" | head -20 | sed 's/^/    /'
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
