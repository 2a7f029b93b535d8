#!/usr/bin/env bash
# The release binary (issue 15): builds `keyward` with `cargo build --release` and prints
#   1. its size and the ratio to the budget of 40 MB (40 000 000 bytes), with how much of it is
#      debug information and whether that is compressed;
#   2. whether `ldd` shows libudev (it must not: hidapi's hidraw backend is pure Rust);
#   3. whether a forced panic (`keyward debug panic`, hidden) has a backtrace frame naming a
#      `.rs` file and line of Keyward's own code (`crates/keyward/src/…rs:LINE`), read from the
#      binary's compressed line tables at run time.
# Exits non-zero when any of the three fails. A release build takes about 10 minutes on 2 cores
# when nothing is built yet. KEYWARD_BIN=PATH checks that binary instead of building one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUDGET=40000000

if [ -n "${KEYWARD_BIN:-}" ]; then
    BIN=$KEYWARD_BIN
else
    cargo build --release -q -p keyward --bin keyward
    BIN=${CARGO_TARGET_DIR:-target}/release/keyward
fi
failed=0

# 1. Size.
size=$(stat -c %s "$BIN")
# The .debug_* sections as stored in the file (a compressed section counts its compressed
# bytes; its flags include C), from `readelf -S -W`: name, type, address, offset, size, entry
# size, flags.
debug_bytes=0
debug_sections=0
compressed_sections=0
while read -r name _type _address _offset hex_size _entry_size flags _; do
    case $name in .debug_*) ;; *) continue ;; esac
    debug_bytes=$((debug_bytes + 16#$hex_size))
    debug_sections=$((debug_sections + 1))
    if [[ $flags == *C* ]]; then compressed_sections=$((compressed_sections + 1)); fi
done < <(readelf -S -W "$BIN" | sed -n 's/^ *\[ *[0-9]*\] *//p')
awk -v s="$size" -v b="$BUDGET" -v d="$debug_bytes" -v n="$debug_sections" -v c="$compressed_sections" 'BEGIN {
    printf "size: %.1f MB (%d bytes); budget %.0f MB; ratio %.2f of the budget\n", s / 1e6, s, b / 1e6, s / b
    printf "debug information: %.1f MB in %d .debug_* sections, %d of them compressed\n", d / 1e6, n, c
}'
if [ "$size" -gt "$BUDGET" ]; then
    echo "FAIL: over the budget"
    failed=1
fi

# 2. libudev.
if ldd "$BIN" | grep -q libudev; then
    echo "libudev: LINKED (FAIL):"
    ldd "$BIN" | grep libudev
    failed=1
else
    echo "libudev: not linked ($(ldd "$BIN" | wc -l) libraries: $(ldd "$BIN" | awk '{ print $1 }' | xargs))"
fi

# 3. A forced panic's backtrace.
status=0
trace=$(RUST_BACKTRACE=1 "$BIN" debug panic 2>&1 >/dev/null) || status=$?
# The "panicked at FILE:LINE" header comes from the panic's location compiled into the binary;
# the frames' "at FILE:LINE" lines can only come from the debug information.
frame=$(grep -E -m1 '^ +at .*crates/keyward/src/[^ ]*\.rs:[0-9]+' <<<"$trace" || true)
if [ "$status" -eq 101 ] && [ -n "$frame" ]; then
    echo "panic backtrace names Keyward's code: $(sed 's/^ *//' <<<"$frame")"
else
    echo "panic backtrace: exit code $status, no frame naming crates/keyward/src/…rs:LINE (FAIL):"
    sed 's/^/    /' <<<"$trace"
    failed=1
fi

exit "$failed"
