#!/usr/bin/env python3
"""Overload benchmark: hostile and slow clients against one promgate while a
normal writer sends; not a CI test.

    python3 bench/overload.py [--series 100000] [--hold 20] [--skip-build]

promgate (release build, pinned to core 0) is seeded with --series series,
then the normal writer (examples/rw_loadgen.rs, 100 rounds of 10k series, 4
connections, on core 1) runs three times, for at most --hold seconds each:

- idle: nobody else;
- slow clients within the connection limit: 150 connections holding half a
  request head, 150 requests whose bodies stall after 10 of 1,000,000
  declared bytes, 50 requests that send 900 kB of a 1 MB body and stall
  (they spend the budget of body bytes in flight), and 100 scrapers of
  /metrics that read nothing: 450 of the 512 connections;
- a flood beyond it: the same plus 1,000 more idle connections, so that
  new connections wait in the accept queue.

Each phase prints the writer's rate, p99 and non-2xx answers, and
promgate's RSS and threads (peak, sampled every 100 ms), with the
self-metrics that count what was refused. Every hostile connection is
closed at the end of its phase, and the writer's series are checked on the
page afterwards. Everything listens on 127.0.0.1; every loop is bounded.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: ports, readiness, /proc readers)

SERVER, CLIENT = ["taskset", "-c", run.SERVER_CORE], ["taskset", "-c", run.CLIENT_CORE]


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def connect(port, data=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    # Small buffers: a scraper that reads nothing fills them at once.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if data:
        s.sendall(data)
    return s


def hostile(port, flood):
    """Opens the phase's hostile connections; returns them to close later."""
    head = b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n"
    socks = []
    for _ in range(150):
        socks.append(connect(port, head))
    for _ in range(150):
        socks.append(connect(port, head + b"Content-Length: 1000000\r\n\r\nten bytes."))
    for _ in range(50):
        s = connect(port, head + b"Content-Length: 1000000\r\n\r\n")
        s.settimeout(0.05)
        try:
            s.sendall(os.urandom(900_000))
        except (socket.timeout, OSError):
            pass  # the budget is spent: promgate stopped reading, as meant
        socks.append(s)
    for _ in range(100):
        socks.append(connect(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
    if flood:
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
    return socks


def sampler(pid, stop, peak):
    while not stop.is_set():
        try:
            peak["rss"] = max(peak.get("rss", 0), run.rss_kib(pid))
            peak["threads"] = max(peak.get("threads", 0), threads(pid))
        except OSError:
            return
        time.sleep(0.1)


def counters(port):
    text = run.http_get(f"http://127.0.0.1:{port}/-/metrics", timeout=30).decode()
    names = ["promgate_requests_rejected_total", "promgate_connections_closed_total",
             "promgate_connections_limit_reached_total"]
    return {n: run.metric_sum(text, n) for n in names}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--hold", type=int, default=20, help="seconds the writer runs per phase, at most")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "promgate", "--example", "rw_loadgen"],
                       cwd=run.ROOT, check=True)
    gen = f"{run.ROOT}/target/release/examples/rw_loadgen"
    port = run.free_port()
    url = f"http://127.0.0.1:{port}/api/v1/write"
    work = tempfile.mkdtemp(prefix="promgate-overload-")
    proc = subprocess.Popen(SERVER + [f"{run.ROOT}/target/release/promgate", "--web.listen-address",
                                      f"127.0.0.1:{port}", "--log.level", "error", "--series.ttl", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    try:
        run.wait_ready(f"http://127.0.0.1:{port}/-/ready", proc)
        now = int(time.time() * 1000)
        seeded = run.load({"loadgen": gen}, url, args.series, 1, base_ms=now - 3 * 3_600_000)
        print(f"Seeded {args.series} series ({seeded['samples_per_sec'] / 1e6:.2f} M samples/s); "
              f"RSS {run.rss_kib(proc.pid) / 1024:.0f} MiB.\n")
        print("| phase | writer samples/s | writer p99 | writer non-2xx | peak RSS | peak threads |"
              " rejected | connections closed | limit reached |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        # Each phase's rounds are 15 s apart, after the seed's, before now.
        base = now - 2 * 3_600_000
        for k, (phase, attack, flood) in enumerate([("idle", False, False),
                                                    ("slow clients, 450 connections", True, False),
                                                    ("flood, 1,450 connections", True, True)]):
            before = counters(port)
            socks = hostile(port, flood) if attack else []
            time.sleep(1)
            peak, stop = {}, threading.Event()
            t = threading.Thread(target=sampler, args=(proc.pid, stop, peak))
            t.start()
            try:
                out = subprocess.run(CLIENT + [gen, "send", "--url", url, "--series", "10000", "--rounds", "100",
                                               "--connections", "4", "--base-ms", str(base + k * 100 * 15_000),
                                               "--max-seconds", str(args.hold)],
                                     capture_output=True, text=True, timeout=args.hold + 120)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr)
                w = json.loads(out.stdout.strip().splitlines()[-1])
            finally:
                stop.set()
                t.join()
                for s in socks:
                    s.close()
            time.sleep(1)
            after = counters(port)
            d = {n: after[n] - before[n] for n in after}
            print(f"| {phase} | {w['samples_per_sec'] / 1e6:.2f} M | {w['p99_ms']:.1f} ms | {w['failures']} |"
                  f" {peak['rss'] / 1024:.0f} MiB | {peak['threads']} |"
                  f" {d['promgate_requests_rejected_total']:.0f} | {d['promgate_connections_closed_total']:.0f} |"
                  f" {d['promgate_connections_limit_reached_total']:.0f} |")
        page = run.http_get(f"http://127.0.0.1:{port}/metrics", timeout=60).decode()
        live = sum(1 for line in page.splitlines() if line and not line.startswith("#"))
        print(f"\nAfterwards: {live} series on the page; RSS {run.rss_kib(proc.pid) / 1024:.0f} MiB.")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
