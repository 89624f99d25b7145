#!/usr/bin/python3
"""Turn bench/cluster.sh's parley-bench rows into a table: the single node
against the three-node cluster, step by step, with ratios cluster/single.

    cluster.py RESULTS.tsv --idle idle.tsv --machine machine.txt --out results.md

Rows are labelled "single" or "cluster". A cluster row's server CPU is the
sum over its processes, and server_cpu_each_s gives each: the three Parley
nodes, the three nats-servers, then the nodes' PostgreSQL backends
(cluster.sh passes -pid in that order).

idle.tsv (label, mode, scenario, server CPU ms per second with no
sessions and no load, measured just before the run) gives the "net"
column: CPU per delivery with that fixed cost (heartbeats, JetStream's own
traffic) taken out over the step's window.

Scale-out estimate, from the net figures less the PostgreSQL backends'
share (PostgreSQL is one server for all nodes, not a part of each): on
one machine the cluster's processes share the single node's core, so
their CPU per delivery C3 is the whole cluster's cost of a delivery, of
which about 2/3 cross nodes (sessions spread evenly over three nodes).
Then a crossing costs O = (C3 - C1) / (2/3) more than a delivery on one
node (C1), N machines with sessions spread evenly cost C(N) = C1 + O
(N-1)/N per delivery, spread over N machines, and carry N C1 / C(N) times
what one node does. PostgreSQL's share per crossing delivery is printed
beside it: the database server's load grows with the whole cluster's.
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (load, fmt, ratio: shared with the comparison)

NODES = 3
CROSSING = 2.0 / 3.0  # share of deliveries that cross nodes (even spread over three)
UNITS = {"chat": "msg/s", "muc": "room msg/s"}


def load(path):
    """compare.py's rows, with each process's CPU as a list of floats."""
    rows = compare.load(path)
    for r in rows:
        r["server_cpu_each_s"] = [float(x) for x in r.get("server_cpu_each_s", "").split(",") if x]
    return rows


fmt, ratio = compare.fmt, compare.ratio


def delivered(r):
    s = "%d" % r["delivered"]
    if r["lost"] or r["errors"]:
        s += " (lost %d, errors %d)" % (r["lost"], r["errors"])
    return s


def scale(c1, c3, n):
    """What n machines carry, in single nodes, from the measured costs."""
    over = (c3 - c1) / CROSSING
    return n * c1 / (c1 + over * (n - 1) / n)


def load_idle(path):
    idle = {}
    if path:
        with open(path) as f:
            for line in f:
                label, mode, sc, ms = line.rstrip("\n").split("\t")
                idle[(label, mode, sc)] = float(ms)
    return idle


def net(r, idle):
    """CPU per delivery, µs, less the idle cost over the step's window."""
    ms = idle.get((r["label"], r["tls"], r["scenario"]))
    if ms is None or not r["delivered"]:
        return None
    return max(0.0, r["server_cpu_s"] - ms / 1000.0 * r["window_s"]) * 1e6 / r["delivered"]


def table(rows, idle):
    by = collections.defaultdict(dict)  # (tls, scenario) -> offered -> label -> row
    for r in rows:
        by[(r["tls"], r["scenario"])].setdefault(r["offered_per_s"], {})[r["label"]] = r
    out = []
    out.append("| scenario | TLS | offered | delivered single / cluster | server CPU µs per delivery, single / cluster (ratio) "
               "| the same net of idle (ratio) | cluster CPU by process: each node / NATS / PostgreSQL, µs "
               "| p50 ms single / cluster (ratio) | p99 ms single / cluster (ratio) "
               "| nodes' scale-out estimate: 3 / 10 machines; PostgreSQL µs per crossing delivery |")
    out.append("|---|---|---:|---|---|---|---|---|---|---|")
    for (tls, sc) in sorted(by, key=lambda k: (k[0] != "none", k[1])):
        for off in sorted(by[(tls, sc)]):
            d = by[(tls, sc)][off]
            s, c = d.get("single"), d.get("cluster")
            if s is None or c is None:
                continue
            c1, c3 = s["server_us_per"], c["server_us_per"]
            each = c["server_cpu_each_s"]
            split, pg = "–", 0.0
            if len(each) >= 2 * NODES and c["delivered"]:
                per = [x * 1e6 / c["delivered"] for x in each]
                pg = sum(per[2 * NODES:])
                split = "%s / %s / %s" % (" + ".join(fmt(x) for x in per[:NODES]), fmt(sum(per[NODES:2 * NODES])),
                                          fmt(pg) if len(per) > 2 * NODES else "–")
            n1, n3 = net(s, idle), net(c, idle)
            est = "–"
            if n1 and n3 and not (s["lost"] or c["lost"]):
                est = "%.1f / %.1f; %s" % (scale(n1, n3 - pg, 3), scale(n1, n3 - pg, 10), fmt(pg / CROSSING))
            out.append("| %s | %s | %s %s | %s / %s | %s / %s (%s) | %s / %s (%s) | %s | %s / %s (%s) | %s / %s (%s) | %s |" % (
                sc, "STARTTLS" if tls == "starttls" else "plain", fmt(off, 0), UNITS.get(sc, "/s"),
                delivered(s), delivered(c),
                fmt(c1), fmt(c3), ratio(c3, c1), fmt(n1), fmt(n3), ratio(n3, n1), split,
                fmt(s["p50_ms"], 2), fmt(c["p50_ms"], 2), ratio(c["p50_ms"], s["p50_ms"]),
                fmt(s["p99_ms"], 1), fmt(c["p99_ms"], 1), ratio(c["p99_ms"], s["p99_ms"]),
                est))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--idle")
    ap.add_argument("--machine")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = load(a.tsv)
    text = []
    if a.machine:
        with open(a.machine) as f:
            text.append("```\n" + f.read().strip() + "\n```\n")
    idle = load_idle(a.idle)
    text.append(table(rows, idle))
    if idle:
        text.append("\nIdle server CPU, ms per second (no sessions, no load): " + "; ".join(
            "%s %s %s %s" % (k[0], k[1], k[2], fmt(v, 0)) for k, v in sorted(idle.items())))
    text.append("""
Ratios are cluster / single (below 1 is cheaper or faster in the cluster).
Server CPU: the single node's process (SQLite, in process); the cluster's
three Parley nodes and three nats-servers, pinned to the same core as the
single node, and the nodes' PostgreSQL backends (the system's PostgreSQL,
not pinned), together.
Scale-out estimate: N machines, each one node (and its NATS server),
sessions spread evenly, carry N × C1 / (C1 + O (N−1)/N) single nodes' load,
O = (C3 − C1) / (2/3) the extra cost of a delivery that crosses nodes,
C1 and C3 the net figures, C3 without the PostgreSQL backends' share (one
database server for all nodes: its CPU per crossing delivery is beside).""")
    s = "\n".join(text) + "\n"
    sys.stdout.write(s)
    if a.out:
        with open(a.out, "w") as f:
            f.write(s)


if __name__ == "__main__":
    main()
