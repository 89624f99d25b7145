#!/usr/bin/env bash
# Side-by-side hot-path figures (issue 15): the same Go benchmarks against a
# base commit and the work tree, run alternately in one session so that both
# see the same machine load. Prints medians and new/base ratios as a
# markdown table.
#
#   bench/hotpath.sh [base-commit]     (default: HOTPATH_BASE or 76fd92f,
#                                        the last commit on encoding/xml)
#   COUNT=5 BENCHTIME=1s bench/hotpath.sh
#
# The router benchmarks' source (BenchmarkChatMessage*) is taken from the
# work tree for both sides, so they measure the same thing; the XML
# package's benchmarks are the base's own (their code did not change).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-${HOTPATH_BASE:-76fd92f}}
count=${COUNT:-5}
benchtime=${BENCHTIME:-1s}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/base"
git archive "$base" | tar -x -C "$tmp/base"
cp internal/router/hotpath_bench_test.go internal/router/cputime_*_test.go internal/router/router_test.go \
	"$tmp/base/internal/router/"
(cd "$tmp/base" && go test -c -o "$tmp/router-base.test" ./internal/router &&
	go test -c -o "$tmp/xml-base.test" ./internal/xmpp/xml)
go test -c -o "$tmp/router-new.test" ./internal/router
go test -c -o "$tmp/xml-new.test" ./internal/xmpp/xml

for _ in $(seq "$count"); do
	for v in base new; do
		"$tmp/router-$v.test" -test.run '^$' -test.bench 'ChatMessage' -test.benchmem \
			-test.cpu 1 -test.count 1 -test.benchtime "$benchtime" | sed -n "s/^Benchmark/$v Benchmark/p"
		"$tmp/xml-$v.test" -test.run '^$' -test.bench 'DecodeMessage|EncodeMessage/AppendTo' -test.benchmem \
			-test.cpu 1 -test.count 1 -test.benchtime "$benchtime" | sed -n "s/^Benchmark/$v Benchmark/p"
	done
done >"$tmp/raw"

echo "$(uname -m), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)), load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null), $count runs each, alternating; medians"
echo
echo "| benchmark | metric | base $base | new | new / base |"
echo "|---|---|---:|---:|---:|"
awk '
{
	v = $1; name = $2
	for (i = 4; i + 1 <= NF; i += 2) {
		unit = $(i + 1)
		if (unit == "MB/s") continue
		key = name SUBSEP unit
		vals[v, key, ++n[v, key]] = $i
		if (!(key in seen)) { seen[key] = 1; order[++k] = key }
	}
}
function median(v, key,   m, a, i, j, t) {
	m = n[v, key]
	for (i = 1; i <= m; i++) a[i] = vals[v, key, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (m % 2) return a[(m + 1) / 2]
	return (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	for (i = 1; i <= k; i++) {
		split(order[i], p, SUBSEP)
		if (!n["base", order[i]] || !n["new", order[i]]) continue
		b = median("base", order[i]); x = median("new", order[i])
		r = (b > 0) ? sprintf("%.2f", x / b) : "-"
		sub(/-[0-9]+$/, "", p[1])
		printf "| %s | %s | %g | %g | %s |\n", p[1], p[2], b, x, r
	}
}' "$tmp/raw"
