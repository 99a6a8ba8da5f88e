#!/usr/bin/env python3
"""Soak benchmark: promgate under a sustained write load with series churn,
scraped every second, snapshotting to disk; not a CI test.

    python3 bench/soak.py [--minutes 3] [--series 100000] [--churn-series 20000]
                          [--series-ttl 60s] [--persistence-interval 10s] [--skip-build]

Three load sources run side by side for --minutes (bounded; every loop stops
at the deadline), all against one promgate on 127.0.0.1:

- steady writers: examples/rw_loadgen.rs sending --series series (contiguous
  shape, snappy RW 1.0, 4 connections) round after round, as fast as promgate
  answers: the write rate;
- churn: one round of --churn-series series per second in the churn shape
  (10% of each round's series never seen before), so new series arrive all
  the time and old ones leave by --series.ttl: the live set is bounded
  (series + churn-series + 10% × churn-series × TTL in seconds) and steady
  once the first TTL has passed;
- a scraper reading the whole /metrics page every second.

promgate snapshots its store every --persistence-interval. Every second the
script samples promgate's RSS and its self-metrics; it prints one row per
window (RSS, live series, samples accepted and rejected, write p99 of the
steady writers, scrapes, snapshots) and a summary: RSS drift over the last
third (flat once the live set is steady), the totals, and the restart: how
long promgate takes from start to ready on the snapshot the run left.
Everything listens on 127.0.0.1; the server is pinned to core 0, the load to
core 1.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: ports, readiness, /proc readers)

SERVER, CLIENT = ["taskset", "-c", run.SERVER_CORE], ["taskset", "-c", run.CLIENT_CORE]


def self_metrics(addr):
    return run.http_get(f"http://{addr}/-/metrics", timeout=10).decode()


def start_promgate(binary, addr, args):
    cmd = SERVER + [binary, "--web.listen-address", addr, "--log.level", "warn"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    run.wait_ready(f"http://{addr}/-/ready", proc, seconds=300)
    return proc, time.time() - t0


def loadgen(binary, url, series, rounds, shape, first_round, base_ms, seconds):
    out = subprocess.run(CLIENT + [binary, "send", "--url", url, "--series", str(series), "--rounds", str(rounds),
                                   "--shape", shape, "--first-round", str(first_round), "--base-ms", str(base_ms),
                                   "--connections", "4", "--max-seconds", str(max(seconds, 1))],
                         capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--series", type=int, default=100_000, help="series of the steady writers")
    ap.add_argument("--churn-series", type=int, default=20_000, help="series per churn round (one round a second)")
    ap.add_argument("--series-ttl", default="60s")
    ap.add_argument("--persistence-interval", default="10s")
    ap.add_argument("--window", type=float, default=15.0, help="seconds per printed row")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "promgate", "--example", "rw_loadgen"],
                       cwd=run.ROOT, check=True)
    promgate = f"{run.ROOT}/target/release/promgate"
    gen = f"{run.ROOT}/target/release/examples/rw_loadgen"
    workdir = tempfile.mkdtemp(prefix="promgate-soak-")
    snapshot = os.path.join(workdir, "promgate.snapshot")
    addr = f"127.0.0.1:{run.free_port()}"
    url = f"http://{addr}/api/v1/write"
    flags = ["--series.ttl", args.series_ttl, "--limits.series", "5000000",
             "--persistence.file", snapshot, "--persistence.interval", args.persistence_interval]
    proc, _ = start_promgate(promgate, addr, flags)
    deadline = time.time() + args.minutes * 60
    stop = threading.Event()
    lock = threading.Lock()
    writes, churns, scrapes, samples = [], [], [], []
    errors = []

    def guarded(fn):
        def body():
            try:
                fn()
            except Exception as e:  # report, stop the others
                errors.append(f"{fn.__name__}: {e}")
                stop.set()
        return body

    # Timestamps start two days back and advance 15 s a round: far enough
    # that the steady writers never reach the future window in a soak of
    # (2 days / 15 s per round) rounds.
    base = int(time.time() * 1000) - 2 * 86_400_000

    def steady():
        rounds, k = 5, 0
        while not stop.is_set() and time.time() < deadline:
            r = loadgen(gen, url, args.series, rounds, "contiguous", 0, base + k * rounds * 15_000,
                        deadline - time.time())
            with lock:
                writes.append((time.time(), r))
            k += 1

    def churn():
        k = 0
        while not stop.is_set() and time.time() < deadline:
            t = time.time()
            r = loadgen(gen, url, args.churn_series, 1, "churn", k, base + k * 15_000, deadline - t)
            with lock:
                churns.append((time.time(), r))
            k += 1
            stop.wait(max(0.0, 1.0 - (time.time() - t)))

    def scraper():
        while not stop.is_set() and time.time() < deadline:
            t = time.time()
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=60) as resp:
                n = len(resp.read())
            with lock:
                scrapes.append((time.time(), time.time() - t, n))
            stop.wait(max(0.0, 1.0 - (time.time() - t)))

    def sampler():
        while not stop.is_set() and time.time() < deadline:
            m = self_metrics(addr)
            with lock:
                samples.append((time.time(), run.rss_kib(proc.pid) / 1024,
                                run.metric_sum(m, "promgate_live_series"),
                                run.metric_sum(m, "promgate_samples_received_total"),
                                run.metric_sum(m, "promgate_samples_rejected_total"),
                                run.metric_sum(m, "promgate_persistence_snapshots_total", 'result="success"')))
            stop.wait(1.0)

    threads = [threading.Thread(target=guarded(f)) for f in (steady, churn, scraper, sampler)]
    t_start = time.time()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        final = self_metrics(addr)
        proc.terminate()
        proc.wait(120)
        # Restart on the snapshot the graceful shutdown wrote: time to ready.
        proc, ready_s = start_promgate(promgate, addr, flags)
        loaded = run.metric_sum(self_metrics(addr), "promgate_live_series")
    finally:
        stop.set()
        proc.terminate()
        proc.wait(120)
        size = os.path.getsize(snapshot) if os.path.exists(snapshot) else 0
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"# promgate soak, {time.strftime('%Y-%m-%d')}, {args.minutes:g} min\n")
    print(f"Steady writers: {args.series:,} series, contiguous, 4 connections; churn: {args.churn_series:,} series"
          f" a second, 10% new; --series.ttl {args.series_ttl}; snapshots every {args.persistence_interval};"
          f" /metrics scraped every second. Server on core {run.SERVER_CORE}, load on core {run.CLIENT_CORE}.\n")
    print("| t (s) | RSS MiB | live series | samples accepted/s | rejected | write p99 ms | scrape s (max) | snapshots |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows, prev = [], None
    w = args.window
    n_windows = int((samples[-1][0] - t_start) // w) + 1 if samples else 0
    for i in range(n_windows):
        lo, hi = t_start + i * w, t_start + (i + 1) * w
        ss = [s for s in samples if lo <= s[0] < hi]
        if not ss:
            continue
        last = ss[-1]
        p99 = [r["p99_ms"] for t, r in writes if lo <= t < hi]
        sc = [d for t, d, _ in scrapes if lo <= t < hi]
        rate = (last[3] - prev[3]) / (last[0] - prev[0]) if prev else float("nan")
        rej = last[4] - (prev[4] if prev else 0)
        rows.append((last[0] - t_start, last[1]))
        print(f"| {last[0] - t_start:.0f} | {last[1]:.0f} | {last[2]:,.0f} | {run.fmt(rate / 1e6, 3)} M | {rej:,.0f} |"
              f" {max(p99) if p99 else float('nan'):.1f} | {max(sc) if sc else float('nan'):.2f} | {last[5]:.0f} |")
        prev = last
    # The live set grows for about one TTL after the churn starts; the last
    # third of a soak of three TTLs or more is past that.
    half = [r for t, r in rows if t >= args.minutes * 40]
    drift = (half[-1] - half[0]) / half[0] if len(half) >= 2 else float("nan")
    all_p99 = [r["p99_ms"] for _, r in writes]
    failures = sum(r["failures"] for _, r in writes + churns)
    print(f"\n- RSS over the last third: {half[0] if half else 0:.0f} → {half[-1] if half else 0:.0f} MiB"
          f" ({drift:+.1%}); peak {max(s[1] for s in samples):.0f} MiB")
    print(f"- samples accepted {run.metric_sum(final, 'promgate_samples_received_total'):,.0f},"
          f" rejected {run.metric_sum(final, 'promgate_samples_rejected_total'):,.0f};"
          f" requests refused by the server (non-2xx at the load generators): {failures}")
    print(f"- steady writers' p99 per call: median {statistics.median(all_p99):.1f} ms, worst {max(all_p99):.1f} ms;"
          f" scrapes {len(scrapes)}, slowest {max(d for _, d, _ in scrapes):.2f} s")
    ok, failed = (run.metric_sum(final, "promgate_persistence_snapshots_total", f'result="{r}"')
                  for r in ("success", "failure"))
    print(f"- snapshots written: {ok:.0f}, failed: {failed:.0f}; last file {size / 2**20:.1f} MiB")
    print(f"- restart on that snapshot: ready in {ready_s:.2f} s with {loaded:,.0f} live series")


if __name__ == "__main__":
    main()
