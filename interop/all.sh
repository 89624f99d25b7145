#!/usr/bin/env bash
# Runs every interop suite against the built ./parley and prints one total.
# Each suite is standalone (bash interop/<suite>.sh) and ends with a line
# "N passed, M failed"; this script sums those lines. A suite named on the
# command line runs alone: bash interop/all.sh register muc
set -uo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(run sessions sm sasl2 browser register auth components muc adhoc console mam carbons csi pep omemo upload push federation directory kerberos access cluster)
fi

total_pass=0 total_fail=0 missing=()
for s in "${suites[@]}"; do
  script="interop/$s.sh"
  if [ ! -f "$script" ]; then
    missing+=("$s")
    continue
  fi
  echo "=== interop: $s"
  out=$(mktemp)
  bash "$script" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then
    echo "FAIL $s: the suite printed no summary (exit status $rc)"
    total_fail=$((total_fail + 1))
    continue
  fi
  p=${line%% passed*}
  f=${line#*, }; f=${f%% failed*}
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "FAIL $s: exit status $rc"
    total_fail=$((total_fail + 1))
  fi
done
[ ${#missing[@]} -gt 0 ] && echo "not present (skipped): ${missing[*]}"
echo "interop: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
