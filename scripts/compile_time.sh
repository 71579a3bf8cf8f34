#!/usr/bin/env bash
# Compile time of code using `network!`: builds two scratch crates that depend on this workspace's
# `backprop` by path, `many` (20 different networks, 2 to 6 layers, widths up to 256) and `deep`
# (one network 30 layers deep), each network used once in f32 (see gen_compile_time_crate.py).
#
# For each crate: a first `cargo build` (debug) builds the dependencies; then, RUNS times, the
# crate's own artifacts are removed (`cargo clean -p`, which also drops its incremental cache: a
# mere `touch` lets incremental compilation reuse everything and measures nothing) and
# `cargo build` is timed, so that only the crate itself compiles, from scratch (macro expansion,
# type checking, monomorphisation, LLVM), with the default debug profile. Reported: the median and the fastest
# of those builds, and the size of the macro expansion, measured as the bytes and lines of
# `cargo rustc -- -Zunpretty=expanded` (rustc's own expanded source; `-Z` flags need
# RUSTC_BOOTSTRAP=1 on a stable toolchain, which is how `cargo expand` works too, and is used for
# that one command only) against the bytes and lines of the crate's source.
#
#   scripts/compile_time.sh              # RUNS=3, scratch crates in target/compile-time
#   RUNS=5 scripts/compile_time.sh
#
# Nothing it writes is committed: everything lives under target/compile-time.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${COMPILE_TIME_DIR:-$root/target/compile-time}"
runs="${RUNS:-3}"
export CARGO_TARGET_DIR="$out/target"

mkdir -p "$out"
python3 "$root/scripts/gen_compile_time_crate.py" "$out" "$root" > "$out/networks.txt"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(rustc --version)"
echo "scratch crates: $out (networks listed in $out/networks.txt)"

# Seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

for crate in many deep; do
    dir="$out/$crate"
    (cd "$dir" && cargo build --quiet 2>&1) # dependencies, and a first build of the crate
    times=()
    for _ in $(seq "$runs"); do
        (cd "$dir" && cargo clean --quiet -p "$crate" 2>&1)
        start=$(now)
        log=$(cd "$dir" && cargo build 2>&1)
        end=$(now)
        if [ "$(grep -c '^ *Compiling' <<< "$log")" != 1 ]; then
            echo "warning: this build compiled more than $crate (a dependency changed meanwhile):" >&2
            grep '^ *Compiling' <<< "$log" >&2
        fi
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    median=$(echo "$sorted" | sed -n "$(((runs + 1) / 2))p")
    fastest=$(echo "$sorted" | head -n 1)

    expanded="$out/$crate.expanded.rs"
    (cd "$dir" && RUSTC_BOOTSTRAP=1 cargo rustc --quiet --lib -- -Zunpretty=expanded > "$expanded")
    src_bytes=$(wc -c < "$dir/src/lib.rs")
    src_lines=$(wc -l < "$dir/src/lib.rs")
    exp_bytes=$(wc -c < "$expanded")
    exp_lines=$(wc -l < "$expanded")
    networks=$(grep -c '^network!' "$dir/src/lib.rs")
    layers=$(grep -o '=>' "$dir/src/lib.rs" | wc -l)

    printf '%s: %d network(s), %d layers; debug build of the crate alone: median %.2f s, fastest %.2f s (%d runs: %s)\n' \
        "$crate" "$networks" "$layers" "$median" "$fastest" "$runs" "$(printf '%.2f ' "${times[@]}")"
    printf '%s: source %d bytes / %d lines; expanded %d bytes / %d lines (%.0f bytes per network)\n' \
        "$crate" "$src_bytes" "$src_lines" "$exp_bytes" "$exp_lines" \
        "$(awk -v e="$exp_bytes" -v s="$src_bytes" -v n="$networks" 'BEGIN { print (e - s) / n }')"
done
