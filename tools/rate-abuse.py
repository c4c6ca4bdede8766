#!/usr/bin/env python3
"""Does a party past its rate limit slow the others? (issue 14)

Starts `tirhub serve` (SQLite, the default per-party rate limits), then runs
`tirhub simulate --rate R` against it twice, alternating: alone, and beside an
abusive holder (a holder token hammering GET /v1/notifications from several
processes, as fast as they can). For each run it prints simulate's throughput
and answers, the server's latency percentiles of POST /v1/messages (read from
the /metrics histogram before and after the run, so only the simulated
parties' messages count: the abuser uses another route), the abuser's request
rate and 429 count, and the load average. Python standard library only; not
part of the build.

    python3 tools/rate-abuse.py --tirhub target/release/tirhub [--rate 300] [--seconds 30] [--rounds 2]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

ADMIN = "rate-abuse-admin-token-0123456789"
ROUTE = 'route="/v1/messages",method="POST"'


def call(conn, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def histogram(host, port):
    """Cumulative bucket counts of POST /v1/messages, by upper bound."""
    _, text = call(http.client.HTTPConnection(host, port, timeout=30), "GET", "/metrics")
    buckets = {}
    for line in text.decode().splitlines():
        prefix = f"tirhub_http_request_duration_seconds_bucket{{{ROUTE},le=\""
        if line.startswith(prefix):
            bound, count = line[len(prefix):].split('"} ')
            buckets[float("inf") if bound == "+Inf" else float(bound)] = int(count)
    return buckets


def percentile(before, after, q):
    """The q-quantile of the requests between two scrapes, interpolated within its bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1]
    if total == 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0
    for bound, cumulative in zip(bounds, counts):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cumulative - below, 1)
        lower, below = bound, cumulative
    return bounds[-1]


def abuse(host, port, token, stop_at, counts):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    n, refused = 0, 0
    while time.time() < stop_at:
        status, _ = call(conn, "GET", "/v1/notifications?limit=1", token)
        n += 1
        refused += status == 429
    counts.put((n, refused))


def run(args, host, port, abuser_token, seed):
    before = histogram(host, port)
    procs, counts = [], multiprocessing.Queue()
    load_before = open("/proc/loadavg").read().split()[:3]
    started = time.time()
    if abuser_token:
        stop_at = started + args.seconds + 2
        procs = [multiprocessing.Process(target=abuse, args=(host, port, abuser_token, stop_at, counts))
                 for _ in range(args.abusers)]
        for p in procs:
            p.start()
    sim = subprocess.run(
        [args.tirhub, "simulate", "--url", f"http://{host}:{port}", "--admin-token", ADMIN, "--rate", str(args.rate),
         "--duration", f"{args.seconds}s", "--seed", str(seed), "--json", "--no-inspections"],
        capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
    load_after = open("/proc/loadavg").read().split()[:3]
    abused = (0, 0)
    for p in procs:
        p.join()
        n, refused = counts.get()
        abused = (abused[0] + n, abused[1] + refused)
    elapsed = time.time() - started
    after = histogram(host, port)
    report = json.loads(sim.stdout)
    p = {q: percentile(before, after, q) * 1000 for q in (0.5, 0.9, 0.99)}
    label = "beside the abuser" if abuser_token else "alone"
    print(f"simulate {label}: {report['messages_sent']} messages, {report['messages_per_s']:.1f} msg/s, "
          f"answers {report['answers_by_status']}, clean {report['clean']}")
    print(f"  POST /v1/messages server latency: p50 {p[0.5]:.2f} ms, p90 {p[0.9]:.2f} ms, p99 {p[0.99]:.2f} ms")
    if abuser_token:
        print(f"  abuser: {abused[0]} requests in {elapsed:.0f} s ({abused[0] / elapsed:.0f}/s), "
              f"{abused[1]} answered 429, {abused[0] - abused[1]} served")
    print(f"  load average before {load_before}, after {load_after}")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tirhub", required=True)
    parser.add_argument("--rate", type=float, default=300.0, help="simulate's messages/s (open loop)")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="alone / beside the abuser, alternated")
    parser.add_argument("--abusers", type=int, default=2, help="abusing processes, one connection each")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tirhub-rate-abuse-")
    server = subprocess.Popen(
        [args.tirhub, "serve", "--db", f"sqlite://{tmp}/abuse.db", "--listen", "127.0.0.1:0", "--admin-token", ADMIN],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"}, text=True)
    try:
        host, port = server.stdout.readline().strip().removeprefix("listening on http://").rsplit(":", 1)
        port = int(port)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        tir_id = "TUR/099/001"
        status, _ = call(conn, "PUT", "/v1/admin/holders/TUR%2F099%2F001", ADMIN,
                         {"name": "Abusive carrier", "country": "TR", "status": "authorized"})
        assert status == 200
        status, answer = call(conn, "POST", "/v1/admin/parties", ADMIN,
                              {"kind": "holder", "name": "Abusive holder", "tir_id": tir_id})
        assert status == 201, answer
        abuser = json.loads(answer)["token"]
        for round_ in range(args.rounds):
            order = [None, abuser] if round_ % 2 == 0 else [abuser, None]
            for i, token in enumerate(order):
                run(args, host, port, token, seed=1000 + 10 * round_ + i)
    finally:
        server.terminate()
        server.wait(timeout=30)
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
