#!/usr/bin/env bash
# Hostile input, at volume: runs every property test that feeds a parser outside bytes (the
# `hostile` tests: CTAPHID frames and CTAP answers, the soft key's CBOR requests and reports,
# attestation objects, clientDataJSON, Graph JSON and access tokens, the emulator's registration
# reader, the bulk CSV, the API's JSON bodies) at FUZZ_CASES cases each (default 100 000; the
# test suite runs 256), one process per property so each gets its own memory figure.
#
# Prints one line per property — cases run, panics, peak resident memory (from /usr/bin/time -v),
# seconds — and ends with `fuzz: PASS` or `fuzz: FAIL`. It fails when a property fails, a parser
# panicked, fewer cases ran than asked, or a process's peak memory passed FUZZ_MAX_RSS_MB
# (default 512: every input is small, so memory must not grow with the number of cases).
#
# Usage: bench/fuzz.sh [FILTER]   (FILTER: run only properties whose name contains it)
# The test binaries are built in the debug profile (with the clippy wrapper from the
# environment, if set, as scripts/test does, so nothing is rebuilt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cases=${FUZZ_CASES:-100000}
max_rss_mb=${FUZZ_MAX_RSS_MB:-512}
filter=${1:-}
[ -x /usr/bin/time ] || { echo "bench/fuzz.sh: needs /usr/bin/time (Debian package time)" >&2; exit 1; }

# The packages and test targets that hold the `hostile` properties (keyward-entra's are in its
# library's unit tests, because the readers they test are crate-private). One cargo invocation
# builds them all, so dependencies get the features the workspace test build gives them and
# nothing is compiled a second time.
packages=(keyward-ctap keyward-softkey keyward-webauthn keyward-sim keyward-entra keyward-cli keyward-server)
tests=(hostile hostile_csv hostile_api)
args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
args+=(--lib)
for t in "${tests[@]}"; do args+=(--test "$t"); done
# Each executable with its package's directory (tests that read files beside the crate run
# from there, as cargo runs them).
binaries=$(cargo test -q "${args[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]), m["executable"])')
[ -n "$binaries" ] || { echo "bench/fuzz.sh: the property tests did not build; run: cargo test ${args[*]} --no-run" >&2; exit 1; }

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
status=PASS
total=0
peak_all=0
printf '%-28s %10s %8s %12s %8s  %s\n' parser cases panics "peak MiB" seconds result
while read -r dir bin; do
    for test in $("$bin" --list </dev/null 2>/dev/null | sed -n 's/: test$//p' | grep -E '(^|::)hostile_'); do
        [ -z "$filter" ] || [[ "$test" == *"$filter"* ]] || continue
        start=$(date +%s)
        set +e
        (cd "$dir" && PROPTEST_CASES=$cases RUST_BACKTRACE=0 /usr/bin/time -v -o "$log/time" \
            "$bin" --exact "$test" --nocapture --test-threads=1) </dev/null >"$log/out" 2>&1
        rc=$?
        set -e
        seconds=$(($(date +%s) - start))
        rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log/time")
        rss_mb=$(((${rss_kb:-0} + 1023) / 1024))
        [ "$rss_mb" -gt "$peak_all" ] && peak_all=$rss_mb
        # With one test thread the harness prints `test NAME ... ` before the test's own output.
        line=$(grep -o -m1 'fuzz [^:]*: [0-9]* cases, [0-9]* panics' "$log/out" || true)
        parser=$(sed -n 's/^fuzz \([^:]*\):.*/\1/p' <<<"$line")
        ran=$(sed -n 's/^fuzz [^:]*: \([0-9]*\) cases.*/\1/p' <<<"$line")
        panics=$(sed -n 's/.* \([0-9]*\) panics$/\1/p' <<<"$line")
        result=ok
        if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
            result="FAILED (exit $rc)"
        elif [ "${panics:-1}" -ne 0 ]; then
            result=PANICKED
        elif [ "${ran:-0}" -lt "$cases" ]; then
            result="too few cases"
        elif [ "$rss_mb" -gt "$max_rss_mb" ]; then
            result="memory over ${max_rss_mb} MiB"
        fi
        printf '%-28s %10s %8s %12s %8s  %s\n' "${parser:-$test}" "${ran:-?}" "${panics:-?}" "$rss_mb" "$seconds" "$result"
        if [ "$result" != ok ]; then
            status=FAIL
            { grep -v 'panicked at\|^thread\|^note:' "$log/out" || true; } | tail -n 30
        fi
        total=$((total + 1))
    done
done <<<"$binaries"
[ "$total" -gt 0 ] || { echo "fuzz: FAIL — no property matched '${filter}'"; exit 1; }
echo "fuzz: $status — $total properties at $cases cases each, peak memory ${peak_all} MiB of a ${max_rss_mb} MiB bound"
[ "$status" = PASS ]
