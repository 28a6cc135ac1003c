#!/usr/bin/env python3
"""Paced latency probe (bench/flood.sh): what a health checker and one signed-in API user see during a flood.

probe.py BASE_URL CA_FILE TOKEN SECONDS RATE -> one JSON line per path: requests, statuses, errors, p50/p95/p99/max ms.
One keep-alive HTTPS connection per path (a health checker and an API client reuse theirs), RATE requests a second
each, open loop (the next request is sent on schedule, not after a slow answer plus a pause), every request timed.
"""
import http.client, json, ssl, sys, threading, time, urllib.parse

base, ca, token, seconds, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
url = urllib.parse.urlparse(base)
context = ssl.create_default_context(cafile=ca)


def probe(path, headers, out):
    lat, statuses, errors = [], {}, 0
    conn = None
    start = time.monotonic()
    n = int(seconds * rate)
    for i in range(n):  # bounded: SECONDS x RATE requests
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            lat.append((time.monotonic() - t0) * 1000)
        except Exception:  # a timeout or reset is a result here, counted, and the connection is renewed
            errors += 1
            conn = None
    lat.sort()
    pct = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p / 100))], 1) if lat else None
    out[path] = {"path": path, "requests": n, "statuses": statuses, "errors": errors,
                 "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": round(lat[-1], 1) if lat else None}


results = {}
threads = [threading.Thread(target=probe, args=("/health/live", {}, results)),
           threading.Thread(target=probe, args=("/api/me", {"Authorization": "Bearer " + token}, results))]
for t in threads:
    t.start()
for t in threads:
    t.join()
for path in ("/health/live", "/api/me"):
    print(json.dumps(results[path]))
