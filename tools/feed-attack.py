#!/usr/bin/env python3
"""The feed attack of issue 14, reproduced against a `tirhub serve` it starts.

A holder sends 999 E11 amendments of a 400-goods declaration before recording
(each replaces the advance data and is forwarded again to the customs of
departure), then the customs of departure read GET /v1/notifications?limit=1000,
three reads at once, while another administration reads its own feed.
Prints the server's peak RSS (VmHWM) while the feed grew and during the reads,
the answers' sizes and times. Python standard library only; not part of the build.

    python3 tools/feed-attack.py --tirhub target/release/tirhub [--amendments 999]
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ADMIN = "feed-attack-admin-token-0123456789"
HOLDER = "TUR/012/345"
BODY_BYTES_MAX = 256 * 1024


class Client:
    def __init__(self, host, port):
        self.conn = http.client.HTTPConnection(host, port, timeout=600)

    def call(self, method, path, token=None, body=None):
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def declaration(goods):
    description = "Spare parts for agricultural machinery, assorted, boxed and palletised; " * 7
    def build(chars):
        return {
            "itinerary": ["TR", "GE", "AZ"],
            "offices": [
                {"code": "TR000100", "role": "departure"},
                {"code": "GE000100", "role": "entry"},
                {"code": "AZ000200", "role": "destination"},
            ],
            "vehicle": {"registration": "34ABC123", "country": "TR"},
            "seals": ["TR-884211"],
            "consignments": [{
                "consignor": {"name": "Anatolia Export", "country": "TR"},
                "consignee": {"name": "Baku Import", "country": "AZ"},
                "goods": [{"hs_code": "847990", "description": description[:chars].strip(),
                           "packages": 1 + i % 9, "gross_mass_kg": 10.0 + i,
                           "value": {"amount": 100.0 + i, "currency": "EUR"}} for i in range(goods)],
            }],
        }
    chars = 512
    # The largest descriptions that keep an E11 under the body limit.
    while len(json.dumps(build(chars))) > BODY_BYTES_MAX - 1024:
        chars -= 8
    return build(chars)


def message(kind, reference, fields):
    return {"message_id": uuid.uuid4().hex, "type": kind, "guarantee_reference": reference, **fields}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tirhub", required=True, help="the tirhub binary (a release build)")
    parser.add_argument("--amendments", type=int, default=999)
    parser.add_argument("--goods", type=int, default=400)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--guarantees", type=int, default=1,
                        help="spread the amendments over this many guarantees of the holder "
                             "(one guarantee takes AMENDMENTS_MAX, 20, then 284)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="tirhub-feed-attack-")
    server = subprocess.Popen(
        [args.tirhub, "serve", "--db", f"sqlite://{tmp}/attack.db", "--listen", "127.0.0.1:0",
         "--admin-token", ADMIN, "--no-rate-limits"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"}, text=True)
    try:
        line = server.stdout.readline().strip()
        host, port = line.removeprefix("listening on http://").rsplit(":", 1)
        port = int(port)
        pid = server.pid
        c = Client(host, port)
        started_kib = status_kib(pid, "VmRSS")

        for code, roles in [("TR000100", ["departure", "exit"]), ("GE000100", ["entry", "exit"]),
                            ("AZ000200", ["entry", "destination"])]:
            body = {"code": code, "country": code[:2], "name": f"Office {code}", "roles": roles}
            assert c.call("POST", "/v1/admin/offices", ADMIN, body)[0] == 201
        assert c.call("PUT", "/v1/admin/holders/TUR%2F012%2F345", ADMIN,
                      {"name": "Carrier", "country": "TR", "status": "authorized"})[0] == 200

        def party(body):
            status, answer = c.call("POST", "/v1/admin/parties", ADMIN, body)
            assert status == 201, answer
            return json.loads(answer)["token"]
        tr = party({"kind": "customs", "name": "Customs TR", "country": "TR"})
        ge = party({"kind": "customs", "name": "Customs GE", "country": "GE"})
        party({"kind": "customs", "name": "Customs AZ", "country": "AZ"})
        chain = party({"kind": "guarantee_chain", "name": "Chain"})
        holder = party({"kind": "holder", "name": "Holder", "tir_id": HOLDER})

        first = 100_000_000 + int(time.time()) % 800_000_000
        references = ["XH" + str(first + g) for g in range(args.guarantees)]
        decl = declaration(args.goods)
        body_bytes = len(json.dumps(message("E11", references[0], {"declaration": decl}), separators=(",", ":")))
        for reference in references:
            status, answer = c.call("POST", "/v1/messages", chain, message("E1", reference, {"holder": HOLDER}))
            assert status == 200, answer
            status, answer = c.call("POST", "/v1/messages", holder, message("E9", reference, {"declaration": decl}))
            assert status == 200, answer

        sent = {"ok": 0, "refused": {}}
        lock = threading.Lock()
        def amend(worker, n):
            client = Client(host, port)
            for i in range(n):
                reference = references[(worker + 4 * i) % len(references)]
                status, answer = client.call("POST", "/v1/messages", holder,
                                             message("E11", reference, {"declaration": decl}))
                with lock:
                    if status == 200:
                        sent["ok"] += 1
                    else:
                        code = json.loads(answer)["error"]["code"]
                        sent["refused"][f"{status}/{code}"] = sent["refused"].get(f"{status}/{code}", 0) + 1
        t0 = time.time()
        threads = [threading.Thread(target=amend, args=(i, args.amendments // 4 + (i < args.amendments % 4)))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sending_s = time.time() - t0
        after_sending = (status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS"))

        # Peak RSS of the reads alone: VmHWM reset to the current RSS (Linux clear_refs 5).
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        before_reads = status_kib(pid, "VmRSS")
        answers = []
        def read(token, who):
            t = time.time()
            status, answer = Client(host, port).call("GET", "/v1/notifications?limit=1000", token)
            page = json.loads(answer)
            with lock:
                answers.append((who, status, len(answer), len(page.get("items", [])), time.time() - t))
        readers = [threading.Thread(target=read, args=(tr, f"TR read {i + 1}")) for i in range(args.readers)]
        readers.append(threading.Thread(target=read, args=(ge, "GE read (another party)")))
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        peak_reads = status_kib(pid, "VmHWM")
        time.sleep(1)
        after_reads = status_kib(pid, "VmRSS")

        print(f"server RSS at start: {mib(started_kib)}")
        print(f"E11 body: {body_bytes} bytes ({args.goods} goods); {args.guarantees} guarantee(s), each E1 + E9; "
              f"sent {args.amendments} E11 in {sending_s:.1f} s: "
              f"{sent['ok']} accepted, refused {sent['refused'] or 'none'}")
        print(f"after the amendments: peak RSS {mib(after_sending[0])}, RSS {mib(after_sending[1])}")
        print(f"{args.readers} feed reads at once by the customs of departure, limit=1000:")
        for who, status, size, items, seconds in sorted(answers):
            print(f"  {who}: HTTP {status}, {size} bytes, {items} items, {seconds * 1000:.0f} ms")
        print(f"RSS before the reads {mib(before_reads)}, peak during them {mib(peak_reads)} "
              f"(+{mib(peak_reads - before_reads)}), 1 s after {mib(after_reads)}")
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
