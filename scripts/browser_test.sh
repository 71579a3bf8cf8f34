#!/usr/bin/env bash
# The explaining pages in a real browser (issue 17): headless Chromium opens the seed page with
# #fc2.weight[1][0] and #fc3.weight[0][1], and a softmax network's page, and the DOM it dumps
# after the scripts ran must show each entry's value and factors; a screenshot is taken in the
# same run (target/pictures/seed_fc2.weight[1][0].png), and the stepper is pressed through forward
# and backward.
#
# Needs Chromium (`apt-get install -y chromium`, Debian's package; or set BACKPROP_CHROMIUM).
# Usage: bash scripts/browser_test.sh          (from anywhere; exits non-zero on any failure)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "browser test: FAILED ($1)" >&2
  exit 1
}

chromium_bin="${BACKPROP_CHROMIUM:-chromium}"
command -v "$chromium_bin" >/dev/null 2>&1 ||
  fail "no \`$chromium_bin\`: apt-get install -y chromium, or set BACKPROP_CHROMIUM"
echo "browser test: $("$chromium_bin" --version 2>/dev/null || echo "$chromium_bin")"

mkdir -p target/pictures
cargo run --quiet --example seed -- --html target/pictures/seed.html >/dev/null ||
  fail "the seed example could not write target/pictures/seed.html"
cargo test --test suite browser -- --ignored --test-threads=1 ||
  fail "a page did not show what it must (see the test output above)"
echo "browser test: 4 checks passed (seed #fc2.weight[1][0], seed #fc3.weight[0][1], softmax #fc2.weight[1][3], the stepper); screenshot target/pictures/seed_fc2.weight[1][0].png"
