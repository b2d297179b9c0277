#!/usr/bin/env bash
# The test suite (and a bounded fuzz run) against wageubn._C built with AddressSanitizer and
# UBSan (setup.py's WAGEUBN_SANITIZE=1), in a scratch copy of the tree: the normal editable
# install in the source tree is never touched.  Any sanitizer report fails the run.
#
# Usage: bash .ci/sanitize.sh [SOURCE_TREE]       (default: this repository)
# Environment:
#   WAGEUBN_SANITIZE_DIR        where to put the copy (default: a fresh mktemp -d, removed at exit)
#   WAGEUBN_FUZZ_SECONDS        seconds of fuzzing under the sanitizers (default 60; 0 skips it)
#   WAGEUBN_SANITIZE_PYTEST     extra pytest arguments (e.g. "-x -k quant")
#   WAGEUBN_FUZZ_ARTIFACTS      where failing fuzz inputs are kept (default /tmp/wageubn-fuzz-artifacts)
# See docs/reliability.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$(cd "${1:-$HERE}" && pwd)"
PY="${PYTHON:-python3}"
FUZZ_SECONDS="${WAGEUBN_FUZZ_SECONDS:-60}"

if [[ -n "${WAGEUBN_SANITIZE_DIR:-}" ]]; then
    WORK="$WAGEUBN_SANITIZE_DIR"
    rm -rf "$WORK"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/wageubn-asan.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
fi
TREE="$WORK/tree"
LOG="$WORK/sanitize.log"
mkdir -p "$TREE"

t0=$SECONDS
echo "== sanitize: copying $SRC to $TREE"
# Everything the tests need, without build products or caches (tests/reference, fetched by
# tools/fetch_reference.py, comes along).
tar -C "$SRC" -cf - \
    --exclude=./.git --exclude=./build --exclude='*.so' --exclude='*.o' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis --exclude='*.egg-info' \
    --exclude=.ruff_cache --exclude=.benchmarks --exclude=.venv . | tar -C "$TREE" -xf -

echo "== sanitize: building wageubn._C with WAGEUBN_SANITIZE=1 (ASan + UBSan)"
# CPython's own CFLAGS carry -fwrapv, which defines signed overflow and so hides it from
# UBSan; -fno-wrapv (appended after them) brings the check back.  float-cast-overflow (a
# float -> int conversion out of range, or of NaN) is not part of gcc's -fsanitize=undefined.
(cd "$TREE" && WAGEUBN_SANITIZE=1 CFLAGS="${CFLAGS:-} -fno-wrapv -fsanitize=float-cast-overflow" "$PY" setup.py --quiet build_ext --inplace --parallel 2 \
    --build-temp "$WORK/build-temp" >"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
SO="$(ls "$TREE"/wageubn/_C*.so)"
# The extension must really be instrumented (a silently unsanitized build would pass anything).
# (nm's output is read whole first: grep -q closing the pipe early would fail it under pipefail)
SYMS="$(nm -D "$SO")"
if ! grep -q '__asan_report_load' <<<"$SYMS" || ! grep -q '__ubsan_handle' <<<"$SYMS"; then
    echo "sanitize: $SO is not instrumented with ASan and UBSan" >&2
    exit 1
fi
echo "   built in $((SECONDS - t0)) s"

LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
for lib in "$LIBASAN" "$LIBUBSAN"; do
    [[ -f "$lib" ]] || { echo "sanitize: $lib not found (gcc's sanitizer runtimes)" >&2; exit 1; }
done
# The interpreter is not instrumented: the ASan runtime must be loaded before anything else.
# detect_leaks=0: CPython itself keeps memory alive at exit (leaks are tested separately).
# allocator_may_return_null=1: an impossible allocation is a MemoryError, as without ASan.
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
# ASan's reports also go to files (UBSan's always go to stderr, whatever its log_path, which is
# why pytest runs with --capture=sys below: its default fd capture would swallow a report that
# kills the process).  abort_on_error makes Python's faulthandler print the failing test's stack.
REPORTS="$WORK/reports"
mkdir -p "$REPORTS"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
export PYTHONPATH="$TREE${PYTHONPATH:+:$PYTHONPATH}"
# Python objects from malloc too, so that ASan also sees a use-after-free of an object that the
# binding released too early (pymalloc's arenas would hide it).
export PYTHONMALLOC=malloc
export PYTHONDONTWRITEBYTECODE=1
export WAGEUBN_UNDER_SANITIZER=1

cd "$TREE"
# The tests must import the instrumented copy, not the editable install.
"$PY" - "$SO" <<'EOF'
import sys, wageubn._C as C
assert C.__file__ == sys.argv[1], (C.__file__, sys.argv[1])
print("   wageubn._C from", C.__file__)
EOF

status=0
t1=$SECONDS
echo "== sanitize: test suite under ASan + UBSan"
eval "extra=(${WAGEUBN_SANITIZE_PYTEST:-})"  # shell words, quotes honoured
# The GIL test measures time, which ASan's mapping and poisoning of large buffers distorts, and
# the page-fault test checks glibc's malloc, which ASan replaces: both deselected (a skip
# would fail a run with WAGEUBN_REQUIRE_REFERENCE set).
"$PY" -m pytest -p no:cacheprovider --capture=sys \
    --deselect tests/test_reliability.py::test_kernels_release_the_gil \
    --deselect tests/test_reliability.py::test_activations_do_not_fault_in_fresh_pages_on_every_call "${extra[@]}" 2>&1 | tee "$LOG" || status=$?
echo "   test suite: $((SECONDS - t1)) s, exit $status"

if [[ "$FUZZ_SECONDS" != 0 ]]; then
    t2=$SECONDS
    echo "== sanitize: fuzz/fuzz_c.py for ${FUZZ_SECONDS} s under ASan + UBSan (random inputs)"
    fstatus=0
    # A fuzzed padding may ask for a legitimately huge output: above 3 GiB it is a MemoryError.
    ASAN_OPTIONS="$ASAN_OPTIONS:max_allocation_size_mb=3072" \
        "$PY" fuzz/fuzz_c.py --random --max-seconds "$FUZZ_SECONDS" --artifact-dir "$WORK" 2>&1 \
        | tee -a "$LOG" || fstatus=$?
    ARTIFACTS="${WAGEUBN_FUZZ_ARTIFACTS:-${TMPDIR:-/tmp}/wageubn-fuzz-artifacts}"
    for f in "$WORK"/crash-* "$WORK"/fuzz-last-input.bin; do
        [[ -f "$f" ]] || continue
        mkdir -p "$ARTIFACTS"
        cp "$f" "$ARTIFACTS/"
        echo "   failing input kept as $ARTIFACTS/$(basename "$f") (replay: python fuzz/fuzz_c.py FILE)," \
             "base64: $(base64 -w0 "$f")" >&2
    done
    echo "   fuzz: $((SECONDS - t2)) s, exit $fstatus"
    [[ $fstatus == 0 ]] || status=$fstatus
fi

# Every report fails the run, also one that did not stop the process (e.g. in a subprocess);
# ASan's warnings (a refused huge allocation, which is a MemoryError) are not reports.
for f in "$REPORTS"/*; do
    [[ -f "$f" ]] || continue
    if grep -E -q 'ERROR: |runtime error:' "$f"; then
        echo "---- sanitizer report $f" >&2
        cat "$f" >&2
        [[ $status != 0 ]] || status=1
    fi
done
if grep -E -q 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$LOG"; then
    grep -E -n 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$LOG" | head -20 >&2
    [[ $status != 0 ]] || status=1
fi
echo "== sanitize: total $((SECONDS - t0)) s, exit $status"
exit "$status"
