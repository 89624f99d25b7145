#!/usr/bin/python3
"""bench helper: sample a server's processes, then build the comparison table.

    report.py sample PID OUT.tsv
    report.py table --work DIR --servers "parley prosody ejabberd" ...
"""
import argparse
import os
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def tree(root):
    """PIDs of root and all its descendants (ejabberd's beam has children)."""
    parent = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        parent[int(name)] = int(fields[1])
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def usage(pid):
    """(rss_kib, cpu_seconds) of one process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        rss = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        return None
    fields = st[st.rindex(")") + 2:].split()
    return rss, (int(fields[11]) + int(fields[12])) / CLK   # utime + stime


def sample(pid, out):
    """Once a second until the process is gone: time, summed RSS, CPU."""
    with open(out, "w", buffering=1) as f:
        f.write("time\trss_kib\tcpu_s\tprocs\n")
        while True:
            if usage(pid) is None:
                return
            rss = cpu = 0.0
            pids = tree(pid)
            for p in pids:
                u = usage(p)
                if u:
                    rss += u[0]
                    cpu += u[1]
            f.write("%.3f\t%d\t%.2f\t%d\n" % (time.time(), rss, cpu, len(pids)))
            time.sleep(1)


def tsung_stats(path):
    """Totals from tsung.log, which holds one dump per interval.

    Sample lines: "stats: NAME count mean stdvar max min gmean gcount" where
    count/mean cover the interval; counter lines: "stats: NAME count total".
    Returns {name: (count, mean, max)} for samples, {name: total} for counters.
    """
    sums, maxes, counters = {}, {}, {}
    with open(path) as f:
        for line in f:
            if not line.startswith("stats: ") or line.startswith("stats: {"):
                continue
            parts = line.split()
            name, vals = parts[1], parts[2:]
            if len(vals) == 2:
                counters[name] = float(vals[1])
            elif len(vals) >= 5:
                n, mean, mx = float(vals[0]), float(vals[1]), float(vals[3])
                c, t = sums.get(name, (0.0, 0.0))
                sums[name] = (c + n, t + n * mean)
                maxes[name] = max(maxes.get(name, 0.0), mx)
    samples = {k: (c, (t / c if c else 0.0), maxes[k]) for k, (c, t) in sums.items()}
    return samples, counters


def proc_stats(path, t0, t1):
    """Idle RSS (last sample before the load), peak RSS, CPU used in [t0, t1]."""
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            t, rss, cpu, _ = line.split("\t")
            rows.append((float(t), int(rss) / 1024.0, float(cpu)))
    if not rows:
        return None
    before = [r for r in rows if r[0] <= t0] or rows[:1]
    during = [r for r in rows if t0 <= r[0] <= t1 + 1.5] or rows
    return {"idle_rss": before[-1][1], "peak_rss": max(r[1] for r in rows),
            "cpu": during[-1][2] - before[-1][2]}


def collect(work, server, users):
    d = os.path.join(work, server)
    marks = {}
    with open(os.path.join(d, "marks")) as f:
        for line in f:
            k, v = line.split()
            marks[k] = float(v)
    logs = [os.path.join(root, "tsung.log") for root, _, files in os.walk(os.path.join(d, "tsung"))
            if "tsung.log" in files]
    if not logs:
        return None
    samples, counters = tsung_stats(logs[0])
    s = lambda k: samples.get(k, (0.0, None, None))
    m = {}
    m["tsung_rc"] = marks.get("tsung_rc", -1)
    m["wall"] = marks["end"] - marks["start"]
    m["logged_in"] = s("tr_roster")[0]
    m["connect"] = s("connect")[1]
    m["open"] = s("tr_open")[1]
    m["starttls"] = s("tr_starttls")[1]
    m["auth"] = s("tr_auth")[1]
    m["auth_max"] = s("tr_auth")[2]
    m["roster"] = s("tr_roster")[1]
    parts = [m[k] for k in ("connect", "open", "starttls", "auth") if m[k] is not None]
    m["login"] = sum(parts) if parts else None
    m["sent"] = s("tr_msg")[0]
    m["delivered"] = s("xmpp_msg_latency")[0]
    m["delivered_pct"] = 100.0 * m["delivered"] / m["sent"] if m["sent"] else None
    m["latency"] = s("xmpp_msg_latency")[1]
    m["latency_max"] = s("xmpp_msg_latency")[2]
    errs = {k: v for k, v in counters.items() if k.startswith("error") or k == "match_stop"}
    m["errors"] = sum(errs.values())
    m["error_kinds"] = ", ".join("%s=%d" % (k, v) for k, v in sorted(errs.items())) or "-"
    m["sessions_done"] = counters.get("finish_users_count", 0)
    p = proc_stats(os.path.join(d, "proc.tsv"), marks["start"], marks["end"])
    if p:
        m.update(p)
        m["rss_per_user"] = 1024.0 * (p["peak_rss"] - p["idle_rss"]) / users if users else None
        m["cpu_per_kmsg"] = 1000.0 * p["cpu"] / m["delivered"] if m["delivered"] else None
    return m


# (key, label, format, lower_is_better or None when a ratio means nothing)
ROWS = [
    ("logged_in", "users logged in (auth+bind+roster ok)", "%.0f", None),
    ("connect", "TCP connect, mean ms", "%.2f", True),
    ("open", "stream open to features, mean ms", "%.2f", True),
    ("starttls", "STARTTLS + TLS handshake + restart, mean ms", "%.2f", True),
    ("auth", "SASL PLAIN + restart + bind, mean ms", "%.2f", True),
    ("auth_max", "SASL PLAIN + restart + bind, max ms", "%.1f", True),
    ("login", "connect+open+TLS+auth+bind, mean ms", "%.2f", True),
    ("roster", "roster get, mean ms", "%.2f", True),
    ("sent", "chat messages sent", "%.0f", None),
    ("delivered", "chat messages delivered", "%.0f", None),
    ("delivered_pct", "delivered, % of sent", "%.1f", False),
    ("latency", "message send-to-delivery, mean ms", "%.2f", True),
    ("latency_max", "message send-to-delivery, max ms", "%.1f", True),
    ("errors", "errors (tsung error_* + failed checks)", "%.0f", True),
    ("idle_rss", "server RSS before load, MiB", "%.1f", True),
    ("peak_rss", "server peak RSS, MiB", "%.1f", True),
    ("rss_per_user", "peak minus idle RSS per user, KiB", "%.1f", True),
    ("cpu", "server CPU time during load, s", "%.2f", True),
    ("cpu_per_kmsg", "server CPU s per 1000 delivered messages", "%.3f", True),
    ("wall", "tsung wall time, s", "%.1f", None),
]


def fmt(f, v):
    return "-" if v is None else f % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)


def table(args):
    servers = args.servers.split()
    data = {s: collect(args.work, s, args.users) for s in servers}
    cols = [s for s in ("parley", "prosody", "ejabberd") if s in servers and data.get(s)]
    ratio_cols = [o for o in ("prosody", "ejabberd") if o in cols and "parley" in cols]
    head = ["metric"] + cols + ["parley/%s" % o for o in ratio_cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for key, label, f, _ in ROWS:
        row = [label] + [fmt(f, data[c].get(key)) for c in cols]
        row += [ratio(data["parley"].get(key), data[o].get(key)) for o in ratio_cols]
        lines.append("| " + " | ".join(row) + " |")
    title = ("# Parley vs Prosody vs ejabberd: %d users arriving at %s/s, one %s-byte chat "
             "message per user every %ss for %ss, %s, same run (%s)"
             % (args.users, args.rate, args.msg_size, args.interval, args.duration, args.tls,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    notes = ["", "Ratios are Parley's figure divided by the other server's: below 1 means Parley "
             "is lower (faster, smaller) on that metric. Indicative only: 2 shared cores, "
             "tsung on the same machine, other work running concurrently.", "",
             "Errors by kind: " + "; ".join("%s: %s" % (c, data[c]["error_kinds"]) for c in cols)]
    out = "\n".join([title, ""] + lines + notes) + "\n"
    with open(args.out, "w") as f:
        f.write(out)
    print(out)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "table":
        ap = argparse.ArgumentParser()
        ap.add_argument("--work", required=True)
        ap.add_argument("--servers", required=True)
        ap.add_argument("--users", type=int, required=True)
        ap.add_argument("--rate", required=True)
        ap.add_argument("--duration", required=True)
        ap.add_argument("--interval", required=True)
        ap.add_argument("--tls", required=True)
        ap.add_argument("--msg-size", default="64")
        ap.add_argument("--out", required=True)
        table(ap.parse_args(sys.argv[2:]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
