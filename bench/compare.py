#!/usr/bin/python3
"""Turn parley-bench's TSV rows (bench/compare.sh) into one table of ratios
and gnuplot plots of latency against offered rate.

    compare.py RESULTS.tsv --machine machine.txt --plots DIR --out results.md

A step is *sustained* when nothing was lost, nothing failed or was skipped,
the generator sent at least 90 % of the offered rate and the p99 latency
stayed under --p99-limit (50 ms by default). For each scenario and TLS mode the table gives each
server's highest sustained rate, and, at the highest rate every server
sustained (the reference rate), its CPU per delivery and latencies. Ratios
are Parley's figure divided by the other server's.
"""
import argparse
import collections
import os
import subprocess
import sys

SERVERS = ["parley", "prosody", "ejabberd"]
UNITS = {"chat": "msg/s", "presence": "updates/s", "muc": "room msg/s", "login": "logins/s"}
PER = {"chat": "message", "presence": "delivery", "muc": "delivery", "login": "login"}


def load(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = []
        for line in f:
            if line.startswith("label\t"):
                continue
            r = dict(zip(head, line.rstrip("\n").split("\t")))
            for k, v in r.items():
                if k not in ("label", "scenario", "tls", "mech", "server_cpu_each_s"):
                    # Empty: not measured (the server_login_* columns
                    # without -metrics).
                    r[k] = float(v) if v != "" else float("nan")
            rows.append(r)
    return rows


P99_LIMIT = 50.0


def complete(r):
    """Everything delivered, nothing failed, the generator kept the rate."""
    return (r["lost"] == 0 and r["errors"] == 0 and r["skipped"] == 0 and r["delivered"] > 0
            and r["sent"] >= 0.9 * r["offered_per_s"] * r["seconds"])


def sustained(r):
    return (r["lost"] == 0 and r["errors"] == 0 and r["skipped"] == 0 and r["delivered"] > 0
            and r["sent"] >= 0.9 * r["offered_per_s"] * r["seconds"] and r["p99_ms"] < P99_LIMIT)


def fmt(v, digits=1):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return "%.0f" % v
    return ("%%.%df" % digits) % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "%.2f" % (a / b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--machine")
    ap.add_argument("--plots")
    ap.add_argument("--out")
    ap.add_argument("--p99-limit", type=float, default=50.0, help="ms: a step with a higher p99 is not sustained")
    a = ap.parse_args()
    global P99_LIMIT
    P99_LIMIT = a.p99_limit
    rows = load(a.tsv)
    by = collections.defaultdict(list)  # (label, tls, scenario) -> steps
    for r in rows:
        by[(r["label"], r["tls"], r["scenario"])].append(r)
    servers = [s for s in SERVERS if any(k[0] == s for k in by)]
    others = [s for s in servers if s != "parley"]
    modes = sorted({k[1] for k in by if k[0] != "reflector"}, key=lambda m: m != "starttls")
    out = []
    w = out.append
    if a.machine and os.path.exists(a.machine):
        w("Machine and run:\n")
        w("```\n" + open(a.machine).read().strip() + "\n```\n")

    # the generator's own ceiling
    ceil = {}
    for mode in ("starttls", "none"):
        steps = by.get(("reflector", mode, "chat"))
        if not steps:
            continue
        ok = [r for r in steps if sustained(r)]
        best = max(ok, key=lambda r: r["offered_per_s"]) if ok else None
        top = max(steps, key=lambda r: r["offered_per_s"])
        # The conservative figure: CPU per message at the highest step it
        # sustained (little batching there); the highest step batches more
        # per system call and costs less per message.
        ref = best or top
        kept = [r for r in steps if r["lost"] == 0 and r["sent"] >= 0.9 * r["offered_per_s"] * r["seconds"] and r["gen_us_per"] > 0]
        cheap = min(kept, key=lambda r: r["gen_us_per"]) if kept else ref
        # Throughput capacity: messages per CPU-second of the generator at
        # the step where a message cost it least (it batches more per
        # system call as the rate grows), with everything delivered.
        ceil[mode] = 1e6 / cheap["gen_us_per"] if cheap["gen_us_per"] > 0 else None
        w("Generator ceiling (%s; chat against its own reflector, one core each): at %s msg/s offered, everything "
          "delivered, it spent %.1f µs of CPU per message (sending and receiving), i.e. about %s msg/s per core of "
          "its own; at %s msg/s, its highest step with p99 under the limit, %.1f µs per message (%s msg/s per core)." % (
              "TLS" if mode == "starttls" else "plaintext",
              fmt(cheap["offered_per_s"], 0), cheap["gen_us_per"], fmt(ceil[mode], 0),
              fmt(ref["offered_per_s"], 0), ref["gen_us_per"], fmt(1e6 / ref["gen_us_per"], 0) if ref["gen_us_per"] else "–"))
        w("")

    head = "| mode | scenario | metric | better | " + " | ".join(servers) + " | " + \
        " | ".join("parley/" + o for o in others) + " |"
    w("")
    w(head)
    w("|" + "---|" * (4 + len(servers) + len(others)))

    def row(mode, sc, metric, better, vals, digits=1):
        cells = [fmt(vals.get(s), digits) for s in servers]
        rat = [ratio(vals.get("parley"), vals.get(o)) for o in others]
        w("| %s | %s | %s | %s | %s | %s |" % (mode, sc, metric, better, " | ".join(cells), " | ".join(rat)))

    trail = []
    notes = []
    for mode in modes:
        mname = "TLS" if mode == "starttls" else "plain"
        for sc in ("chat", "presence", "muc", "login"):
            steps = {s: by.get((s, mode, sc), []) for s in servers}
            if not any(steps.values()):
                continue
            full, fast = {}, {}
            for s, st in steps.items():
                ok = [r for r in st if complete(r)]
                full[s] = max(r["offered_per_s"] for r in ok) if ok else None
                ok = [r for r in ok if r["p99_ms"] < P99_LIMIT]
                fast[s] = max(r["offered_per_s"] for r in ok) if ok else None
            row(mname, sc, "highest rate delivered in full (%s)" % UNITS[sc], "higher", full, 0)
            row(mname, sc, "highest rate with p99 < %g ms (%s)" % (P99_LIMIT, UNITS[sc]), "higher", fast, 0)
            for o in others:
                for name, d in (("highest rate delivered in full", full), ("highest rate with p99 under the limit", fast)):
                    if d.get(o) is not None and (d.get("parley") is None or d["parley"] < d[o]):
                        trail.append("%s %s: %s vs %s" % (mname, sc, name, o))
            # p99 at every rate both delivered in full, not only at the
            # reference rate: a server can have the longer tail at low
            # rates and the shorter one near another's saturation.
            for o in others:
                worse = [r["offered_per_s"] for r in steps.get("parley", []) if complete(r)
                         for q in steps.get(o, []) if complete(q) and q["offered_per_s"] == r["offered_per_s"]
                         and r["p99_ms"] > q["p99_ms"]]
                if worse:
                    trail.append("%s %s: p99 latency vs %s at %s/s" % (mname, sc, o, ", ".join(fmt(v, 0) for v in sorted(worse))))
            common = [v for v in full.values() if v is not None]
            if not common:
                continue
            ref = min(common)
            at = {s: next((r for r in steps[s] if r["offered_per_s"] == ref and complete(r)), None) for s in servers}
            cpu = {s: at[s]["server_us_per"] for s in servers if at[s]}
            row(mname, sc, "server CPU per %s at %s/s (µs)" % (PER[sc], fmt(ref, 0)), "lower", cpu)
            row(mname, sc, "p50 latency at %s/s (ms)" % fmt(ref, 0), "lower", {s: at[s]["p50_ms"] for s in servers if at[s]}, 2)
            row(mname, sc, "p99 latency at %s/s (ms)" % fmt(ref, 0), "lower", {s: at[s]["p99_ms"] for s in servers if at[s]}, 2)
            row(mname, sc, "p99.9 latency at %s/s (ms)" % fmt(ref, 0), "lower", {s: at[s]["p999_ms"] for s in servers if at[s]}, 2)
            for o in others:
                if cpu.get("parley") and cpu.get(o) and cpu["parley"] > cpu[o]:
                    trail.append("%s %s: server CPU per %s vs %s" % (mname, sc, PER[sc], o))
            if sc == "chat" and mode in ceil and ceil[mode]:
                # Parley's rate per core where it delivered in full at its
                # highest rate (its cheapest per message), against the
                # generator's.
                pr = [r for r in steps.get("parley", []) if complete(r) and r["server_us_per"] > 0]
                if pr:
                    top = max(pr, key=lambda r: r["offered_per_s"])
                    per_core = 1e6 / top["server_us_per"]
                    notes.append("%s chat: at %s msg/s Parley spent %.1f µs of CPU per message, about %s msg/s per core; "
                                 "the generator's ceiling is %.1f× that." % (mname, fmt(top["offered_per_s"], 0), top["server_us_per"],
                                                                           fmt(per_core, 0), ceil[mode] / per_core))
            if sc == "chat":
                # The floor: the reflector, pinned and driven like the
                # servers, does a read and a write per message and nothing
                # else; at the same offered rate its CPU per message is
                # what the machine's loopback path costs any server.
                refl = {r["offered_per_s"]: r for r in by.get(("reflector", mode, "chat"), [])
                        if complete(r) and r["server_us_per"] > 0}
                both = [r for r in steps.get("parley", []) if complete(r) and r["offered_per_s"] in refl and r["server_us_per"] > 0]
                if both:
                    r = min(both, key=lambda r: r["offered_per_s"])
                    f = refl[r["offered_per_s"]]
                    notes.append("%s chat: at %s msg/s the reflector, which only reads each message and writes it to its "
                                 "addressee's connection, spent %.1f µs of CPU per message: the floor of this machine's "
                                 "loopback path at that rate. Parley spent %.1f µs, %.1f× the floor." % (
                                     mname, fmt(r["offered_per_s"], 0), f["server_us_per"], r["server_us_per"],
                                     r["server_us_per"] / f["server_us_per"]))
        idle = {s: by.get((s, mode, "idle")) for s in servers}
        if any(idle.values()):
            kib = {s: v[0]["kib_per_session"] for s, v in idle.items() if v and v[0]["delivered"] == v[0]["sessions"] and v[0]["sessions"] > 0}
            n = max((v[0]["sessions"] for v in idle.values() if v), default=0)
            row(mname, "idle", "server memory per idle session at %d (KiB)" % n, "lower", kib)
            for o in others:
                if kib.get("parley") and kib.get(o) and kib["parley"] > kib[o]:
                    trail.append("%s idle: memory per session vs %s" % (mname, o))
    w("")
    w("\"Delivered in full\": nothing lost or failed, and the generator sent at least 90 % of the offered rate. "
      "CPU and latencies are compared at the highest rate every server delivered in full. "
      "Ratios are Parley's figure over the other's.")
    w("")
    for n in notes:
        w(n)
    if trail:
        w("Parley trails in: " + "; ".join(sorted(set(trail))) + ".")
    else:
        w("Parley trails in: nothing measured here.")
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.plots:
        plot(by, servers, modes, a.plots)


def plot(by, servers, modes, d):
    os.makedirs(d, exist_ok=True)
    for mode in modes:
        for sc in ("chat", "presence", "muc", "login"):
            series = []
            for s in servers + ["reflector"]:
                st = sorted(by.get((s, mode, sc), []), key=lambda r: r["offered_per_s"])
                if not st:
                    continue
                dat = os.path.join(d, "%s-%s-%s.dat" % (mode, sc, s))
                with open(dat, "w") as f:
                    for r in st:
                        f.write("%g %g %g %g\n" % (r["offered_per_s"], max(r["p50_ms"], 0.001), max(r["p99_ms"], 0.001), max(r["max_ms"], 0.001)))
                series.append((s, dat))
            if not series:
                continue
            png = os.path.join(d, "%s-%s.png" % (mode, sc))
            title = "%s, %s: latency against offered rate" % (sc, "TLS" if mode == "starttls" else "plaintext")
            cmds = [
                "set terminal pngcairo size 900,560" if has_cairo() else "set terminal png size 900,560",
                "set output '%s'" % png,
                "set title '%s'" % title,
                "set logscale xy", "set grid",
                "set xlabel 'offered rate (%s)'" % UNITS[sc],
                "set ylabel 'latency (ms)'",
                "set key top left",
            ]
            parts = []
            for i, (s, dat) in enumerate(series):
                parts.append("'%s' using 1:3 with linespoints lc %d lw 2 title '%s p99'" % (dat, i + 1, s))
                parts.append("'%s' using 1:2 with linespoints lc %d dt 2 title '%s p50'" % (dat, i + 1, s))
            cmds.append("plot " + ", ".join(parts))
            subprocess.run(["gnuplot"], input="\n".join(cmds) + "\n", text=True, check=False, stderr=subprocess.DEVNULL)


_cairo = None


def has_cairo():
    global _cairo
    if _cairo is None:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        _cairo = "pngcairo" in (r.stdout + r.stderr)
    return _cairo


if __name__ == "__main__":
    sys.exit(main())
