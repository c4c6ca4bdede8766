#!/usr/bin/env python3
"""A real PostgreSQL restart under load (issue 14): no acknowledged message lost.

Starts `tirhub serve --db URL` (a PostgreSQL database of a cluster you may
restart: not one other work shares), drives E1 messages (one new guarantee
each) from several threads, and in the middle runs --restart (for example
`pg_ctlcluster --skip-systemctl-redirect 15 faults restart`). A message answered
503 (the store unavailable) or not answered is sent again with the same
message id until it is answered 200. Then it checks, straight in the database
(psql), that every message answered 200 is in the journal exactly once, runs
`tirhub audit verify`, and checks the server still serves. Python standard
library only; not part of the build.

    python3 tools/pg-restart.py --tirhub target/release/tirhub \
        --db postgres://postgres@127.0.0.1:5544/faults \
        --restart 'pg_ctlcluster --skip-systemctl-redirect 15 faults restart'
"""

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid

ADMIN = "pg-restart-admin-token-0123456789"
HOLDER = "TUR/077/001"


def call(conn, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tirhub", required=True)
    parser.add_argument("--db", required=True, help="postgres://... of a cluster this run may restart")
    parser.add_argument("--restart", required=True, help="the command that restarts PostgreSQL")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs")
    parser.add_argument("--restart-after", type=float, default=6.0, help="seconds into the load")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    server = subprocess.Popen(
        [args.tirhub, "serve", "--db", args.db, "--listen", "127.0.0.1:0", "--admin-token", ADMIN,
         "--no-rate-limits"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"}, text=True)
    try:
        host, port = server.stdout.readline().strip().removeprefix("listening on http://").rsplit(":", 1)
        port = int(port)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        assert call(conn, "PUT", "/v1/admin/holders/TUR%2F077%2F001", ADMIN,
                    {"name": "Carrier", "country": "TR", "status": "authorized"})[0] == 200
        status, answer = call(conn, "POST", "/v1/admin/parties", ADMIN, {"kind": "guarantee_chain", "name": "Chain"})
        assert status == 201, answer
        chain = json.loads(answer)["token"]

        lock = threading.Lock()
        acknowledged, retried, unanswered = [], [0], [0]
        stop_at = time.time() + args.seconds
        series = 100 + int(time.time()) % 900

        def drive(worker):
            c = http.client.HTTPConnection(host, port, timeout=60)
            n = 0
            while time.time() < stop_at:
                reference = f"XH{series}{worker:02d}{n:04d}"
                n += 1
                body = {"message_id": uuid.uuid4().hex, "type": "E1", "guarantee_reference": reference,
                        "holder": HOLDER}
                while True:
                    try:
                        status, answer = call(c, "POST", "/v1/messages", chain, body)
                    except (OSError, http.client.HTTPException):
                        with lock:
                            unanswered[0] += 1
                        c = http.client.HTTPConnection(host, port, timeout=60)
                        time.sleep(0.05)
                        continue
                    if status == 200:
                        with lock:
                            acknowledged.append(body["message_id"])
                        break
                    assert status == 503 and json.loads(answer)["error"]["code"] == 400, (status, answer)
                    with lock:
                        retried[0] += 1
                    time.sleep(0.05)

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(args.restart_after)
        with lock:
            before_restart = len(acknowledged)
        t0 = time.time()
        subprocess.run(shlex.split(args.restart), check=True)
        restart_s = time.time() - t0
        with lock:
            after_restart = len(acknowledged)
        for t in threads:
            t.join()

        # Straight from the database: each acknowledged message id once in the journal.
        query = "SELECT message_id FROM journal WHERE message_type = 'E1'"
        out = subprocess.run(["psql", args.db, "-At", "-c", query], check=True, capture_output=True, text=True).stdout
        journaled = {}
        for message_id in out.split():
            journaled[message_id] = journaled.get(message_id, 0) + 1
        lost = [m for m in acknowledged if journaled.get(m, 0) == 0]
        twice = [m for m in acknowledged if journaled.get(m, 0) > 1]
        audit = subprocess.run([args.tirhub, "audit", "verify", "--db", args.db], capture_output=True, text=True)
        status, _ = call(http.client.HTTPConnection(host, port, timeout=30), "POST", "/v1/messages", chain,
                         {"message_id": uuid.uuid4().hex, "type": "E1", "guarantee_reference": f"XH{series}990000",
                          "holder": HOLDER})
        print(f"restart ({args.restart!r}) took {restart_s:.1f} s, {args.restart_after:.0f} s into a "
              f"{args.seconds:.0f} s load of E1 from {args.threads} threads")
        print(f"acknowledged: {len(acknowledged)} ({before_restart} before the restart began, "
              f"{after_restart} when it returned); answers 503 sent again: {retried[0]}; "
              f"requests without answer sent again: {unanswered[0]}")
        print(f"in the journal: {len(acknowledged) - len(lost)} of them; lost: {len(lost)}; journaled twice: "
              f"{len(twice)}; E1 entries in the journal: {sum(journaled.values())}")
        print(f"tirhub audit verify: exit {audit.returncode}: {audit.stdout.strip()} {audit.stderr.strip()}")
        print(f"a new message after the restart: HTTP {status}")
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
        return 0 if not lost and not twice and audit.returncode == 0 and status == 200 else 1
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
