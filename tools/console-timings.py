#!/usr/bin/env python3
"""Times the console's pages: signs in with a customs token (and the admin
token, for the admin's dashboard), then GETs each page N times in a row on
one keep-alive connection and prints p50, p99 and max in ms (docs/performance.md,
"Console pages at scale"); the dashboard's live part both drawn and answered 204
for a current tag. Only the standard library.

  tools/console-timings.py --url http://127.0.0.1:8080 --token tirhub_... \
      [--admin-token T] [--count 200] [--transport REF]

Without --transport, the first transport linked from the arrivals page is timed.
"""

import argparse
import http.client
import math
import re
import statistics
import sys
import time
import urllib.parse


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def sign_in(conn, token):
    conn.request("GET", "/console/sign-in")
    r = conn.getresponse()
    page = r.read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    cookie = next(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and "tirhub_sign_in" in v)
    body = urllib.parse.urlencode({"csrf": csrf, "token": token})
    conn.request("POST", "/console/sign-in", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    r = conn.getresponse()
    r.read()
    session = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie" and "tirhub_session=" in v]
    if r.status != 303 or not session:
        sys.exit(f"sign-in failed: {r.status}")
    return session[0]


def get(conn, path, cookie):
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    r = conn.getresponse()
    body = r.read()
    elapsed = (time.perf_counter() - start) * 1000
    if r.status not in (200, 204):
        sys.exit(f"GET {path}: {r.status}")
    return elapsed, body.decode()


def percentile(sorted_ms, q):
    # Nearest rank, as the dashboard's p90.
    rank = max(1, math.ceil(q * len(sorted_ms)))
    return sorted_ms[min(rank, len(sorted_ms)) - 1]


def time_page(conn, label, path, cookie, count):
    get(conn, path, cookie)  # warm: the first read of a page fills caches.
    ms = sorted(get(conn, path, cookie)[0] for _ in range(count))
    print(f"{label:<28} n={count:<4} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms   max {ms[-1]:7.1f} ms")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True, help="a customs party's token")
    p.add_argument("--admin-token")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--transport")
    a = p.parse_args()
    conn = connect(a.url)
    cookie = sign_in(conn, a.token)
    _, arrivals = get(conn, "/console/arrivals", cookie)
    rows = arrivals.count('href="/console/transports/')
    reference = a.transport or re.search(r'href="/console/transports/([^"]+)"', arrivals).group(1)
    print(f"arrivals list {rows} transports; transport page {reference}")
    time_page(conn, "GET /console/arrivals", "/console/arrivals", cookie, a.count)
    time_page(conn, "GET /console/transports/{ref}", f"/console/transports/{reference}", cookie, a.count)
    time_page(conn, "GET /console/dashboard", "/console/dashboard", cookie, a.count)
    # The live part htmx polls: drawn anew, and answered 204 while its tag is current.
    _, part = get(conn, "/console/dashboard/live", cookie)
    tag = re.search(r'/console/dashboard/live\?seen=([^"]+)"', part).group(1)
    time_page(conn, "GET .../dashboard/live", "/console/dashboard/live", cookie, a.count)
    time_page(conn, "GET .../live?seen= (unchanged)", f"/console/dashboard/live?seen={tag}", cookie, a.count)
    if a.admin_token:
        admin = sign_in(conn, a.admin_token)
        time_page(conn, "GET /console/dashboard (admin)", "/console/dashboard", admin, a.count)


if __name__ == "__main__":
    main()
