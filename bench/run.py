#!/usr/bin/env python3
"""Side-by-side benchmark: promgate against the real peers on this machine.

    python3 bench/run.py [--sizes 10000,100000,1000000] [--reps 2]
                         [--parts ingest,exposition,interference,push] [--skip-build] [--push-reps 5]
                         [--baseline PATH] [--kinds promgate,promgate-baseline]
                         [--shapes contiguous,interleaved,sharded,churn]

promgate-rw2 is promgate fed the same series as Remote-Write 2.0 (symbols
table, metadata with every series), as Prometheus 3 sends them.

A/B of two promgate builds: --baseline names another promgate binary, run as
"promgate-baseline" beside this tree's build, alternated with it in every
repetition (ingest) and scraped beside it (exposition); --kinds restricts the
ingest servers (e.g. to the two builds).

Ingest: the same snappy RW 1.0 payloads (families like the mock exporter's,
6-10 labels sorted by name, a family's series together within a request,
500 series per request, per-series timestamps increasing each round) are
sent by examples/rw_loadgen.rs over 4 keep-alive connections to promgate,
vmagent (forwarding to a discarding sink), victoria-metrics single-node,
Prometheus (--web.enable-remote-write-receiver) and the sink itself (the
HTTP ceiling). Each server first gets one round that creates the series
(its rate is reported apart); the measured rounds are the steady state. The
server is pinned to core 0, the load generator (and vmagent's sink) to core
1; targets are interleaved in every repetition. Each run checks that what
was acknowledged landed.

Payload shapes (--shapes, default contiguous only): the same series sent in
the orders a real sender makes (bench/shapes.rs): contiguous (above),
interleaved (consecutive series from different families), sharded (what shard
0 of 8 Prometheus remote-write shards sends: a hash-spread subset of
consecutive scrape pages, in page order) and churn (from the second round on,
10% of each round's series are new). One table per shape, then all side by
side. For churn the landing check on promgate counts every series ever sent,
and the last round's series holding its sample. With 1,000,000 among --sizes the
targets include creation: each shape's first round, and churn's new series
(derived from the churn and contiguous rates of the same run).

Exposition: GET /metrics (plain and gzip) on promgate against Prometheus'
/federate and the Pushgateway's /metrics holding the same series, with RSS growth during the scrape, and
promgate's write p99 while a big page is scraped every second against idle.

Push: the Pushgateway's push API on the same text bodies (HELP/TYPE,
counters, gauges, histograms, as client libraries write them): one group of
100k series (--push-reps times, fresh servers alternated, medians), and
1,000 groups of 100 series (once), each body PUT twice (create, then
replace) over one connection, then a scrape of the page holding the 1,000
groups; promgate against the Pushgateway.

Prints markdown tables and the pass/fail lines of the performance targets.
Every loop is bounded in count and time; everything listens on 127.0.0.1.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, CLIENT_CORE = "0", "1"
# The load generator's payload shapes (bench/shapes.rs), for --shapes.
SHAPES = {
    "contiguous": "a family's series together within a request",
    "interleaved": "consecutive series from different families, series i of family i mod 3",
    "sharded": "shard 0 of 8 Prometheus shards: a hash-spread subset of consecutive 600-series scrape pages, in page order",
    "churn": "from the second round on, 10% of each round's series are new",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None, timeout=300):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_ready(url, proc, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode}")
        try:
            http_get(url, timeout=2)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"not ready: {url}")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def metric_sum(text, name, label_filter=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label_filter in line and not line.startswith("#"):
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", line)
            if m:
                total += float(m.group(2))
    return total


class Server:
    """One server under test, pinned to the server core, stopped on exit."""

    def __init__(self, kind, binaries, workdir):
        self.kind, self.dir = kind, tempfile.mkdtemp(dir=workdir)
        self.port = free_port()
        self.sink = None
        addr = f"127.0.0.1:{self.port}"
        pin = ["taskset", "-c", SERVER_CORE]
        if kind in ("promgate", "promgate-baseline", "promgate-rw2"):
            binary = binaries["baseline" if kind == "promgate-baseline" else "promgate"]
            cmd = pin + [binary, "--web.listen-address", addr, "--series.ttl", "0",
                         "--limits.series", "5000000", "--log.level", "warn"]
            self.ready, self.write = f"http://{addr}/-/ready", f"http://{addr}/api/v1/write"
        elif kind == "vmagent":
            self.sink = Sink(binaries, workdir)
            cmd = pin + ["vmagent", f"-httpListenAddr={addr}", f"-remoteWrite.url={self.sink.url}",
                         f"-remoteWrite.tmpDataPath={self.dir}/q", "-loggerLevel=ERROR"]
            self.ready, self.write = f"http://{addr}/health", f"http://{addr}/api/v1/write"
        elif kind == "victoria-metrics":
            cmd = pin + ["victoria-metrics", f"-httpListenAddr={addr}", f"-storageDataPath={self.dir}/data",
                         "-loggerLevel=ERROR", "-retentionPeriod=1d"]
            self.ready, self.write = f"http://{addr}/health", f"http://{addr}/api/v1/write"
        elif kind == "prometheus":
            open(f"{self.dir}/p.yml", "w").write("global: {}\n")
            cmd = pin + ["prometheus", f"--config.file={self.dir}/p.yml", f"--web.listen-address={addr}",
                         f"--storage.tsdb.path={self.dir}/data", "--web.enable-remote-write-receiver",
                         "--log.level=error"]
            self.ready, self.write = f"http://{addr}/-/ready", f"http://{addr}/api/v1/write"
        elif kind == "pushgateway":
            cmd = pin + ["prometheus-pushgateway", f"--web.listen-address={addr}", "--persistence.file=",
                         "--log.level=error"]
            self.ready, self.write = f"http://{addr}/-/ready", f"http://{addr}/metrics/job/bench"
        elif kind == "sink":
            cmd = pin + [binaries["loadgen"], "sink", "--listen", addr]
            self.ready, self.write = None, f"http://{addr}/api/v1/write"
        else:
            raise ValueError(kind)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.ready:
            wait_ready(self.ready, self.proc)
        else:
            wait_port(self.port)
        self.url = f"http://{addr}"

    def counted_samples(self):
        """What the server itself says it ingested, for the landing check."""
        if self.kind == "vmagent":
            m = http_get(self.url + "/metrics").decode()
            return metric_sum(m, "vmagent_rows_inserted_total", 'type="promremotewrite"')
        if self.kind == "victoria-metrics":
            m = http_get(self.url + "/metrics").decode()
            return metric_sum(m, "vm_rows_inserted_total", 'type="promremotewrite"')
        if self.kind == "prometheus":
            m = http_get(self.url + "/metrics").decode()
            return metric_sum(m, "prometheus_tsdb_head_samples_appended_total")
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.sink:
            self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Sink:
    def __init__(self, binaries, workdir):
        self.port = free_port()
        self.proc = subprocess.Popen(["taskset", "-c", CLIENT_CORE, binaries["loadgen"], "sink", "--listen",
                                      f"127.0.0.1:{self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/api/v1/write"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def wait_port(port, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def load(binaries, url, series, rounds, max_seconds=120, base_ms=None, protocol=1, shape="contiguous", first_round=0):
    base = [] if base_ms is None else ["--base-ms", str(base_ms)]
    out = subprocess.run(["taskset", "-c", CLIENT_CORE, binaries["loadgen"], "send", "--url", url,
                          "--series", str(series), "--rounds", str(rounds), "--connections", "4",
                          "--max-seconds", str(max_seconds), "--protocol", str(protocol),
                          "--shape", shape, "--first-round", str(first_round)] + base,
                         capture_output=True, text=True, timeout=max_seconds + 300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_promgate(server, series, last_round=None):
    """The page holds every series sent (`series`), and the last round's
    series (`last_round`, default all of them) hold its sample, the others
    an older one (churn: the series replaced since); also returns the live
    label bytes (the canonical keys' total length) for the memory target."""
    last_round = series if last_round is None else last_round
    page = http_get(server.url + "/metrics").decode()
    lines = [l for l in page.splitlines() if l and not l.startswith("#")]
    stamps = [int(l.rsplit(" ", 1)[1]) for l in lines]
    newest = max(stamps) if stamps else 0
    label_bytes = sum(len(l.rsplit(" ", 2)[0]) for l in lines)
    return len(lines) == series and sum(s == newest for s in stamps) == last_round, label_bytes


def run_ingest(binaries, kind, series, rounds, workdir, shape="contiguous"):
    server = Server(kind, binaries, workdir)
    try:
        # One untimed round first creates the series (reported apart): the
        # measured rounds are the steady state, every sample updating a series
        # the server already holds, as in production.
        base = int(time.time() * 1000) - (rounds + 1) * 15_000
        protocol = 2 if kind == "promgate-rw2" else 1
        first = load(binaries, server.write, series, 1, base_ms=base, protocol=protocol, shape=shape)
        time.sleep(0.5)
        cpu0 = cpu_seconds(server.proc.pid)
        result = load(binaries, server.write, series, rounds, base_ms=base + 15_000, protocol=protocol, shape=shape,
                      first_round=1)
        time.sleep(0.5)  # let asynchronous ingestion (VictoriaMetrics, vmagent) settle
        cpu = cpu_seconds(server.proc.pid) - cpu0
        result["cpu_s_per_m"] = cpu / (result["samples"] / 1e6) if result["samples"] else float("nan")
        result["peak_rss_mib"] = rss_kib(server.proc.pid, "VmHWM") / 1024
        result["first_round_per_sec"] = first["samples_per_sec"]
        if kind in ("promgate", "promgate-baseline", "promgate-rw2"):
            landed, result["label_bytes"] = check_promgate(server, result["series_total"], result["series_last_round"])
            result["landed"] = landed and result["complete"] and result["failures"] == 0
        elif kind == "sink":
            result["landed"] = result["complete"] and result["failures"] == 0
        else:
            counted = server.counted_samples()
            if kind == "vmagent":
                time.sleep(1.0)
                counted = server.counted_samples()
            sent = first["samples"] + result["samples"]
            result["landed"] = result["failures"] == 0 and result["complete"] and first["failures"] == 0 and counted >= sent
            result["server_count"] = counted
        return result
    finally:
        server.stop()


def fmt(x, digits=2):
    return f"{x:,.{digits}f}"


def ratio(med, kind):
    return f"{fmt(med['promgate'] / med[kind])}×" if "promgate" in med and med[kind] else "–"


def ingest_table(binaries, sizes, reps, workdir, kinds, shape="contiguous"):
    results = {}
    for series in sizes:
        # Enough rounds for several seconds of promgate load, bounded for the slow peers.
        rounds = max(3, min(40, 4_000_000 // series))
        for rep in range(reps):
            for kind in kinds:
                r = run_ingest(binaries, kind, series, rounds, workdir, shape)
                results.setdefault((series, kind), []).append(r)
                print(f"  {shape:<11} {series:>9} series  {kind:<17} rep {rep + 1}: {fmt(r['samples_per_sec'] / 1e6, 3)} M samples/s,"
                      f" p99 {fmt(r['p99_ms'])} ms, landed={r['landed']}", file=sys.stderr, flush=True)
    rows = ["| series | server | samples/s (median) | CPU s per M samples | p50 ms | p99 ms | peak RSS MiB | landed | promgate ÷ this"
            " | first round samples/s (creates the series) |",
            "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    summary = {}
    for series in sizes:
        med = {k: statistics.median(r["samples_per_sec"] for r in results[(series, k)]) for k in kinds}
        for kind in kinds:
            rs = results[(series, kind)]
            summary[(series, kind)] = {
                "label_bytes": rs[0].get("label_bytes", 0),
                "rate": med[kind],
                "p99": statistics.median(r["p99_ms"] for r in rs),
                "rss": max(r["peak_rss_mib"] for r in rs),
                "landed": all(r["landed"] for r in rs),
                "first": statistics.median(r["first_round_per_sec"] for r in rs),
            }
            rows.append(f"| {series:,} | {kind} | {fmt(med[kind] / 1e6, 3)} M | {fmt(statistics.median(r['cpu_s_per_m'] for r in rs))} |"
                        f" {fmt(statistics.median(r['p50_ms'] for r in rs))} | {fmt(summary[(series, kind)]['p99'])} |"
                        f" {fmt(summary[(series, kind)]['rss'], 0)} | {all(r['landed'] for r in rs)} |"
                        f" {ratio(med, kind)} |"
                        f" {fmt(statistics.median(r['first_round_per_sec'] for r in rs) / 1e6, 3)} M |")
    return "\n".join(rows), summary


# Issue 12's creation target: series created per second at this store size.
CREATION_SERIES = 1_000_000
CREATION_TARGET = 1.5e6
CHURN_SHARE = 0.10  # bench/shapes.rs CHURN_PERCENT


def churn_creation_rate(churn, contiguous):
    """New series per second in churn's measured rounds, derived from the
    same run: a churn round is contiguous's round with CHURN_SHARE of its
    series new, so its time per sample is (1 - share) / contiguous + share
    / creation. The difference amplifies both rates' errors: near 1.5 M, 1%
    off in either moves the result by 6-8%. Churn's store also grows by
    the new series each round (1M to 1.4M at 1M), which it counts as
    creation. None when the churn round was no slower than that many
    updates: nothing measured."""
    extra = 1 / churn - (1 - CHURN_SHARE) / contiguous
    return CHURN_SHARE / extra if extra > 0 else None


def creation_lines(by_shape, shapes):
    """(text, ok) per creation target: each shape's first round at
    CREATION_SERIES (it creates every series), and churn's new series when
    contiguous ran too (ok None when nothing was measured)."""
    out = []
    for shape in shapes:
        first = by_shape[shape][1][(CREATION_SERIES, "promgate")]["first"]
        out.append((f"creation {CREATION_SERIES:,} series ({shape}, first round): {fmt(first / 1e6, 3)} M series/s"
                    f" (target ≥ {fmt(CREATION_TARGET / 1e6, 1)} M)", first >= CREATION_TARGET))
    if {"churn", "contiguous"} <= set(shapes):
        churn = by_shape["churn"][1][(CREATION_SERIES, "promgate")]["rate"]
        contiguous = by_shape["contiguous"][1][(CREATION_SERIES, "promgate")]["rate"]
        rate = churn_creation_rate(churn, contiguous)
        shown = ("churn's round no slower than its updates alone at contiguous's rate, so no creation cost to divide by"
                 if rate is None
                 else f"{fmt(rate / 1e6, 3)} M series/s")
        out.append((f"creation {CREATION_SERIES:,} series (churn's {CHURN_SHARE:.0%} new, derived from churn"
                    f" {fmt(churn / 1e6, 3)} M and contiguous {fmt(contiguous / 1e6, 3)} M samples/s): {shown}"
                    f" (target ≥ {fmt(CREATION_TARGET / 1e6, 1)} M)", None if rate is None else rate >= CREATION_TARGET))
    return out


def shapes_table(by_shape, shapes, sizes, kinds):
    head = "| shape | series | " + " | ".join(f"{k} samples/s" for k in kinds) + " | landed |"
    if "promgate" in kinds:
        head += "".join(f" promgate ÷ {k} |" for k in kinds if k != "promgate")
        head += " promgate first round samples/s |"
    rows = [head, "|---|---:|" + "---:|" * len(kinds) + "---|" +
            ("---:|" * (len(kinds) - 1) + "---:|" if "promgate" in kinds else "")]
    for shape in shapes:
        sm = by_shape[shape][1]
        for series in sizes:
            row = f"| {shape} | {series:,} | " + " | ".join(f"{fmt(sm[(series, k)]['rate'] / 1e6, 3)} M" for k in kinds)
            row += f" | {all(sm[(series, k)]['landed'] for k in kinds)} |"
            if "promgate" in kinds:
                pg = sm[(series, "promgate")]["rate"]
                row += "".join(f" {fmt(pg / sm[(series, k)]['rate'])}× |" for k in kinds if k != "promgate")
                row += f" {fmt(sm[(series, 'promgate')]['first'] / 1e6, 3)} M |"
            rows.append(row)
    return "\n".join(rows)


# What Prometheus 2.42 sends by default: it gets promgate's OpenMetrics page.
OPENMETRICS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def scrape(url, gzip_ok, accept=None):
    headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    if accept:
        headers["Accept"] = accept
    t = time.perf_counter()
    body = http_get(url, headers)
    return time.perf_counter() - t, len(body)


def push_to_pushgateway(pg, pgw):
    """Pushes promgate's series into the Pushgateway as one group. The
    Pushgateway refuses timestamps and owns job/instance (the grouping key),
    so those two labels are renamed, as it would do itself."""
    page = http_get(pg.url + "/metrics").decode()
    lines = []
    for l in page.splitlines():
        if not l or l.startswith("#"):
            continue
        key, value, _ts = l.rsplit(" ", 2)
        key = re.sub(r'([{,])(job|instance)="', r'\1exported_\2="', key)
        lines.append(f"{key} {value}")
    body = ("\n".join(lines) + "\n").encode()
    req = urllib.request.Request(pgw.write, data=body, method="PUT", headers={"Content-Type": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()


def exposition_table(binaries, sizes, workdir):
    rows = ["| series | server | page | seconds (best of 3) | bytes | RSS growth during scrape MiB | promgate faster than |",
            "|---:|---|---|---:|---:|---:|---:|"]
    lines = []
    for series in sizes:
        pg = Server("promgate", binaries, workdir)
        prom = Server("prometheus", binaries, workdir)
        pgw = Server("pushgateway", binaries, workdir)
        base = Server("promgate-baseline", binaries, workdir) if "baseline" in binaries else None
        try:
            load(binaries, pg.write, series, 2)
            if base:
                load(binaries, base.write, series, 2)
            load(binaries, prom.write, series, 2)
            push_to_pushgateway(pg, pgw)
            targets = [
                ("promgate", pg, "/metrics", False), ("promgate", pg, "/metrics", True),
                ("promgate-openmetrics", pg, "/metrics", False), ("promgate-openmetrics", pg, "/metrics", True),
                ("prometheus", prom, "/federate?match[]=%7B__name__%3D~%22.%2B%22%7D", False),
                ("prometheus", prom, "/federate?match[]=%7B__name__%3D~%22.%2B%22%7D", True),
                ("pushgateway", pgw, "/metrics", False), ("pushgateway", pgw, "/metrics", True),
            ]
            if base:
                targets[2:2] = [("promgate-baseline", base, "/metrics", False), ("promgate-baseline", base, "/metrics", True)]
            best = {}
            for name, server, path, gz in targets:
                times, size, growth = [], 0, 0
                for _ in range(3):
                    before = rss_kib(server.proc.pid)
                    peak = [before]
                    done = threading.Event()

                    def watch():
                        while not done.is_set():
                            peak[0] = max(peak[0], rss_kib(server.proc.pid))
                            time.sleep(0.005)

                    w = threading.Thread(target=watch)
                    w.start()
                    t, size = scrape(server.url + path, gz,
                                     OPENMETRICS_ACCEPT if name == "promgate-openmetrics" else None)
                    done.set()
                    w.join()
                    times.append(t)
                    growth = max(growth, (peak[0] - before) / 1024)
                best[(name, gz)] = (min(times), size, growth)
            for (name, gz), (t, size, growth) in best.items():
                ratios = " / ".join(f"{fmt(best[(peer, gz)][0] / t)}× {peer}" for peer in ("prometheus", "pushgateway"))
                rows.append(f"| {series:,} | {name} | {'gzip' if gz else 'plain'} | {t:.3f} | {size:,} | {growth:.1f} |"
                            f" {ratios if name.startswith('promgate') and 'baseline' not in name else ''} |")
            lines.append((series, best))
        finally:
            pg.stop()
            prom.stop()
            pgw.stop()
            if base:
                base.stop()
    return "\n".join(rows), lines


def scrape_interference(binaries, series, workdir):
    """promgate write p99 with a big page scraped every second, against idle."""
    out = {}
    for mode in ("idle", "scraped"):
        pg = Server("promgate", binaries, workdir)
        try:
            base = int(time.time() * 1000) - 21 * 15_000
            load(binaries, pg.write, series, 1, base_ms=base)
            stop = threading.Event()
            scrapes = [0]

            def scraper():
                end = time.time() + 120
                while not stop.is_set() and time.time() < end:
                    t = time.time()
                    http_get(pg.url + "/metrics", {"Accept-Encoding": "gzip"})
                    scrapes[0] += 1
                    stop.wait(max(0, 1 - (time.time() - t)))

            th = threading.Thread(target=scraper)
            if mode == "scraped":
                th.start()
            r = load(binaries, pg.write, series, 20, base_ms=base + 15_000)
            stop.set()
            if mode == "scraped":
                th.join()
            out[mode] = (r["p99_ms"], r["samples_per_sec"], scrapes[0])
        finally:
            pg.stop()
    return out


def push_bodies(series_per_group, seed_name):
    """A text-format body as client libraries write it for one group of
    `series_per_group` series: counters and gauges with 3 labels, and
    histograms (10 buckets + sum + count per label set), HELP and TYPE on
    every family, 100 series per family."""
    lines, n, fam = [], 0, 0
    while n < series_per_group:
        kind = ("counter", "gauge", "histogram")[fam % 3]
        # Counters named with _total in HELP/TYPE too, as client libraries
        # write the text format 0.0.4.
        name = f"{seed_name}_{fam}" + ("_total" if kind == "counter" else "")
        lines.append(f"# HELP {name} Pushed family {fam} of a batch job.")
        lines.append(f"# TYPE {name} {kind}")
        if kind == "histogram":
            for ls in range(max(1, min(100, series_per_group - n) // 12)):
                labels = f'service="svc-{ls % 7}",method="m{ls}"'
                cum = 0
                for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"):
                    cum += ls + 1
                    lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cum}')
                lines.append(f"{name}_sum{{{labels}}} {cum * 0.123:.3f}")
                lines.append(f"{name}_count{{{labels}}} {cum}")
                n += 12
        else:
            for i in range(min(100, series_per_group - n)):
                lines.append(f'{name}{{service="svc-{i % 7}",method="m{i % 13}",code="{200 + i}"}} {i * 1.5}')
                n += 1
        fam += 1
    return ("\n".join(lines) + "\n").encode()


def push_all(base, bodies):
    """PUTs every (path, body) in order over one connection; seconds taken."""
    import http.client
    host = base.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=600)
    t = time.perf_counter()
    for path, body in bodies:
        conn.request("PUT", path, body=body, headers={"Content-Type": "text/plain; version=0.0.4"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{base}{path}: {r.status}")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def push_table(binaries, workdir, reps):
    """The push API against the Pushgateway on the same bodies: one group of
    100k series, then 1,000 groups of 100 series (each pushed twice: create,
    then replace), then a scrape of the page holding them. The one group
    takes a tenth of a second, so a single pair of PUTs moves by ±10%
    between runs: it is pushed `reps` times, each to fresh servers
    alternated, and the medians are compared (the 1,000 groups take the
    Pushgateway six minutes: once)."""
    cases = [
        ("one group of 100k series", [("/metrics/job/big", push_bodies(100_000, "big_job"))] * 2, reps),
        ("1,000 groups of 100 series", [(f"/metrics/job/batch/instance/i{g}", push_bodies(100, "batch_job"))
                                         for g in range(1000)] * 2, 1),
    ]
    rows = ["| workload | server | seconds | series/s | promgate faster by |", "|---|---|---:|---:|---:|"]
    ratios = {}
    for what, bodies, times in cases:
        series = sum(b.count(b"\n") - b.count(b"# ") for _, b in bodies)
        runs = {"promgate": [], "pushgateway": []}
        took = {}
        for rep in range(times):
            # Each server first in every other rep.
            for kind in ("promgate", "pushgateway")[::1 if rep % 2 == 0 else -1]:
                server = Server(kind, binaries, workdir)
                try:
                    runs[kind].append(push_all(server.url, bodies))
                    if kind == "promgate" and what.startswith("1,000"):
                        took["promgate-scrape"] = scrape(server.url + "/metrics", False)[0]
                    if kind == "pushgateway" and what.startswith("1,000"):
                        took["pushgateway-scrape"] = scrape(server.url + "/metrics", False)[0]
                finally:
                    server.stop()
        for kind, seconds in runs.items():
            took[kind] = statistics.median(seconds)
        if times > 1:
            what = f"{what} (median of {times})"
        ratios[what] = took["pushgateway"] / took["promgate"]
        for kind in ("promgate", "pushgateway"):
            rows.append(f"| {what} | {kind} | {took[kind]:.3f} | {fmt(series / took[kind] / 1e6, 3)} M |"
                        f" {fmt(ratios[what]) + '×' if kind == 'promgate' else ''} |")
        if "promgate-scrape" in took:
            r = took["pushgateway-scrape"] / took["promgate-scrape"]
            ratios["scrape"] = r
            rows.append(f"| /metrics with those groups | promgate | {took['promgate-scrape']:.3f} | | {fmt(r)}× |")
            rows.append(f"| /metrics with those groups | pushgateway | {took['pushgateway-scrape']:.3f} | | |")
    return "\n".join(rows), ratios


def versions():
    """Package versions (the Debian builds print no version of their own)."""
    out = {"promgate": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                      text=True).stdout.strip() or "working tree"}
    for pkg in ("victoria-metrics", "prometheus"):
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        out[pkg + " (Debian package; vmagent is part of victoria-metrics)" if pkg == "victoria-metrics" else pkg] = \
            p.stdout.strip() or "not installed"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--push-reps", type=int, default=5,
                    help="alternated repetitions of the one-group push, reported as medians")
    ap.add_argument("--exposition-sizes", default="100000,1000000")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--baseline", help="another promgate binary to run beside this build (A/B)")
    ap.add_argument("--kinds", default="", help="ingest servers to run, comma-separated (default: all)")
    ap.add_argument("--shapes", default="contiguous",
                    help="ingest payload shapes, comma-separated: contiguous,interleaved,sharded,churn"
                         " (examples/rw_loadgen.rs --shape)")
    ap.add_argument("--parts", default="ingest,exposition,interference,push",
                    help="which parts to run (the target lines need all three)")
    args = ap.parse_args()
    if args.push_reps < 1:
        ap.error("--push-reps must be at least 1")
    parts = set(args.parts.split(","))
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "promgate", "--example", "rw_loadgen"],
                       cwd=ROOT, check=True)
    binaries = {"promgate": f"{ROOT}/target/release/promgate", "loadgen": f"{ROOT}/target/release/examples/rw_loadgen"}
    # promgate-rw2: the same series sent as Remote-Write 2.0 (none of the
    # Debian peers receives 2.0).
    kinds = ["promgate", "promgate-rw2", "vmagent", "victoria-metrics", "prometheus", "sink"]
    if args.baseline:
        binaries["baseline"] = os.path.abspath(args.baseline)
        kinds.insert(1, "promgate-baseline")
    if args.kinds:
        kinds = [k for k in args.kinds.split(",") if k]
    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = [s for s in args.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s}: {', '.join(SHAPES)}")
    workdir = tempfile.mkdtemp(prefix="promgate-bench-")
    try:
        print(f"# promgate side-by-side benchmark, {time.strftime('%Y-%m-%d')}\n")
        print(f"Machine: {os.cpu_count()} cores; server pinned to core {SERVER_CORE}, load generator to core {CLIENT_CORE}.")
        for k, v in versions().items():
            print(f"- {k}: {v}")
        if "ingest" in parts:
            print("\n## Ingest (4 connections, 500 series per request)\n")
            by_shape = {}
            for shape in shapes:
                by_shape[shape] = ingest_table(binaries, sizes, args.reps, workdir, kinds, shape)
            if shapes == ["contiguous"]:
                table, summary = by_shape["contiguous"]
                print(table)
            else:
                for i, shape in enumerate(shapes):
                    print(f"{'' if i == 0 else chr(10)}### Shape: {shape} ({SHAPES[shape]})\n")
                    print(by_shape[shape][0])
                print("\n### Shapes side by side (median samples/s of the measured rounds)\n")
                print(shapes_table(by_shape, shapes, sizes, kinds))
                table, summary = by_shape[shapes[0]]
        if "exposition" in parts:
            exp_sizes = [int(s) for s in args.exposition_sizes.split(",") if s]
            print("\n## Exposition\n")
            etable, ebest = exposition_table(binaries, exp_sizes, workdir)
            print(etable)
        if "interference" in parts:
            mid = 100_000 if 100_000 in sizes else sizes[0]
            inter = scrape_interference(binaries, mid, workdir)
            print(f"\n## Writes while /metrics ({mid:,} series) is scraped every second\n")
            print("| mode | write p99 ms | samples/s | scrapes |\n|---|---:|---:|---:|")
            for mode, (p99, rate, n) in inter.items():
                print(f"| {mode} | {p99:.2f} | {fmt(rate / 1e6, 3)} M | {n} |")
        if "push" in parts:
            print("\n## Push API against the Pushgateway (one connection, each body PUT twice)\n")
            ptable, pratios = push_table(binaries, workdir, args.push_reps)
            print(ptable)
        def line(ok, text):
            verdict = "NOT MEASURED" if ok is None else "PASS" if ok else "FAIL"
            print(f"- {verdict}: {text}")
        if "ingest" in parts and "promgate" in kinds and ("vmagent" in kinds or CREATION_SERIES in sizes):
            print("\n## Targets\n")
        if "ingest" in parts and {"promgate", "vmagent"} <= set(kinds):
            # Issue 12's targets hold on every shape: each gets its ingest
            # and p99 lines, printed whenever both servers ran.
            for shape in shapes:
                sm = by_shape[shape][1]
                what = "" if shapes == ["contiguous"] else f" ({shape})"
                for series in sizes:
                    pg, va = sm[(series, "promgate")], sm[(series, "vmagent")]
                    line(pg["rate"] >= 2 * va["rate"],
                         f"ingest {series:,} series{what}: promgate {fmt(pg['rate'] / va['rate'])}× vmagent (target ≥ 2×)")
                for series in sizes:
                    pg, va = sm[(series, "promgate")], sm[(series, "vmagent")]
                    line(pg["p99"] <= va["p99"],
                         f"p99 {series:,} series{what}: promgate {pg['p99']:.2f} ms vs vmagent {va['p99']:.2f} ms")
                if "promgate-rw2" in kinds:
                    # The same series sent as Remote-Write 2.0 must land at
                    # least as fast, per sample, as sent as 1.0.
                    for series in sizes:
                        v1, v2 = sm[(series, "promgate")], sm[(series, "promgate-rw2")]
                        line(v2["rate"] >= v1["rate"],
                             f"Remote-Write 2.0 ≥ 1.0 per sample, {series:,} series{what}: "
                             f"{fmt(v2['rate'] / v1['rate'])}× (target ≥ 1×)")
        if "ingest" in parts and "promgate" in kinds and CREATION_SERIES in sizes:
            for text, ok in creation_lines(by_shape, shapes):
                line(ok, text)
        if "push" in parts:
            print()
            for what, r in pratios.items():
                target = 5 if what == "scrape" else 10
                line(r >= target, f"push {what}: promgate {fmt(r)}× the Pushgateway (target ≥ {target}×)")
        if parts != {"ingest", "exposition", "interference", "push"}:
            return
        if 10_000 in sizes and 1_000_000 in sizes:
            r = summary[(1_000_000, "promgate")]["rate"] / summary[(10_000, "promgate")]["rate"]
            line(r >= 0.7, f"1M-series rate is {r:.0%} of the 10k-series rate (target ≥ 70%)")
        for series in sizes:
            pg = summary[(series, "promgate")]
            budget = 16 + (1.5 * pg["label_bytes"] + 64 * series) / 2**20
            per_series = pg["rss"] * 2**20 / series
            line(pg["rss"] <= budget, f"memory {series:,} series: peak RSS {pg['rss']:.0f} MiB ({per_series:.0f} B/series,"
                 f" labels {pg['label_bytes'] / series:.0f} B/series) within 16 MiB + 1.5 × labels + 64 B/series = {budget:.0f} MiB")
        for series, best in ebest:
            for gz in (False, True):
                for peer, what in (("prometheus", "Prometheus /federate"), ("pushgateway", "Pushgateway /metrics")):
                    for page, fmt_name in (("promgate", "text"), ("promgate-openmetrics", "OpenMetrics")):
                        ratio = best[(peer, gz)][0] / best[(page, gz)][0]
                        if series == 100_000:
                            line(ratio >= 5, f"/metrics {fmt_name} {series:,} series {'gzip' if gz else 'plain'}:"
                                 f" {ratio:.1f}× faster than {what} (target ≥ 5×)")
            if series == 1_000_000:
                g = max(best[("promgate", False)][2], best[("promgate", True)][2])
                line(g < 32, f"RSS growth during a 1M-series scrape: {g:.1f} MiB (target < 32 MiB)")
        line(inter["scraped"][0] <= 2 * inter["idle"][0],
             f"write p99 while scraped {inter['scraped'][0]:.2f} ms vs idle {inter['idle'][0]:.2f} ms (target ≤ 2×)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
