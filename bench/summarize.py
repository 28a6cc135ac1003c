#!/usr/bin/env python3
"""Turns bench/run.sh's raw wrk output into the Markdown report: summarize.py META RUNS."""
import json
import os
import re
import statistics
import sys

meta_path, runs_path = sys.argv[1], sys.argv[2]
meta = {}
for line in open(meta_path):
    key, _, value = line.rstrip("\n").partition("=")
    meta[key] = value

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse(path):
    text = open(path).read()
    out = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "requests": 0, "non2xx": 0, "errors": 0, "exhausted": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", text, re.M):
        out["p50"] = ms(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", text, re.M):
        out["p99"] = ms(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        out["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["errors"] = sum(int(g) for g in m.groups())
    if m := re.search(r"Exhausted pool requests: (\d+)", text):
        out["exhausted"] = int(m.group(1))  # refresh.lua ran out of tokens: "exhausted" sent, 400 by design
    return out


runs = {}
for line in open(runs_path):
    rnd, scenario, server, conn, load, path = line.rstrip("\n").split("\t")
    r = parse(path)
    r.update(round=rnd, conn=conn, load=load)
    runs.setdefault((scenario, server), []).append(r)

SCENARIOS = [
    ("me", "GET /api/me with a valid JWT (Flask: GET /me, HS256)"),
    ("password", "token endpoint, password grant, scope `openid offline_access` (Flask: POST /login)"),
    ("refresh", "token endpoint, refresh_token grant, every request a never-used token (rotation chain)"),
    ("client_credentials", "token endpoint, client_credentials grant (confidential client)"),
    ("code", "token endpoint, authorization_code grant with PKCE (public first-party client), every request a never-used code"),
    ("signin_page", "GET /signin: the hosted sign-in page (Razor Page, antiforgery token, CSP), no session"),
    ("throttled", "rejected with 429: login throttle on a blocked username (Flask: Flask-Limiter on /limited)"),
    ("gateway", "POST /register with a JSON body: through a gateway route (JWT, role, rate limit, JSON Schema, YARP; HTTPS) "
                "vs straight to the trivial upstream (bench/Baseline, plain HTTP)"),
    ("me_anon", "diagnostic: GET /api/me without a token, 401 (the pipeline without token work)"),
    ("me_badsig", "diagnostic: GET /api/me with a bad signature, 401 (pipeline + one failed ES256 verification)"),
    ("ratelimited", "rejected with 429 by a per-IP rate limit before authentication (GET /health/ready over its limit)"),
]
SERVERS = ["portcullis", "baseline", "flask", "upstream", "yarp", "yarptls"]
EXPECT_NON2XX = {"throttled", "me_anon", "me_badsig", "ratelimited"}


def agg(scenario, server):
    rs = runs.get((scenario, server))
    if not rs:
        return None
    return {
        "rps": statistics.mean(r["rps"] for r in rs),
        "rps_each": [r["rps"] for r in rs],
        "p50": statistics.mean(r["p50"] for r in rs),
        "p99": statistics.mean(r["p99"] for r in rs),
        "requests": sum(r["requests"] for r in rs),
        "non2xx": sum(r["non2xx"] for r in rs),
        "errors": sum(r["errors"] for r in rs),
        "exhausted": sum(r.get("exhausted", 0) for r in rs),
        "conn": rs[0]["conn"],
        "load": "/".join(r["load"] for r in rs),
    }


def f(x, digits=0):
    return "n/a" if x is None or x != x else f"{x:,.{digits}f}"


hash_info = json.loads(meta.get("hash") or "{}")
audit_info = json.loads(meta.get("audit") or "{}")
cores = os.cpu_count() or 1
mib = lambda key: int(meta.get(key) or 0) / 1024  # noqa: E731

print(f"# Benchmark run {meta.get('date')}\n")
print(f"- Machine: {meta.get('machine')}; {meta.get('versions')}")
print(f"- Load average (1/5/15 min) at start: {meta.get('load_start')}; at end: {meta.get('load_end')}. "
      "A load average above the core count means other work shared the machine: read the ratios, not the absolutes.")
print(f"- {meta.get('knobs')}. Portcullis and the Kestrel baseline speak HTTPS (TLS 1.3, same certificate and "
      "cipher policy); **Flask is plain HTTP** (gunicorn -w 2 sync, no TLS), which favours Flask.")
print("- Each cell: mean of the rounds; req/s per round in brackets; `load` is the 1-minute load average when "
      "the run started.\n")

print("| scenario | server | conn | req/s | p50 ms | p99 ms | non-2xx / requests | socket errors | load |")
print("|---|---|---|---|---|---|---|---|---|")
for scenario, _ in SCENARIOS:
    for server in SERVERS:
        a = agg(scenario, server)
        if not a:
            continue
        each = ", ".join(f(x) for x in a["rps_each"])
        print(f"| {scenario} | {server} | {a['conn']} | {f(a['rps'])} [{each}] | {f(a['p50'], 2)} | {f(a['p99'], 2)} "
              f"| {a['non2xx']:,} / {a['requests']:,} | {a['errors']} | {a['load']} |")
print()
print("Scenarios:")
for scenario, text in SCENARIOS:
    print(f"- `{scenario}`: {text}")
print()

print("| scenario | Portcullis ÷ bare Kestrel | Portcullis ÷ Flask |")
print("|---|---|---|")
for scenario, _ in SCENARIOS:
    p, b, fl = agg(scenario, "portcullis"), agg(scenario, "baseline"), agg(scenario, "flask")
    rb = f(p["rps"] / b["rps"], 2) + "×" if p and b else "n/a (no equivalent route)"
    rf = f(p["rps"] / fl["rps"], 2) + "×" if p and fl else "n/a (no equivalent route)"
    print(f"| {scenario} | {rb} | {rf} |")
print()

print("| measure | Portcullis | bare Kestrel | Flask |")
print("|---|---|---|---|")
print(f"| idle RSS (after start + smoke checks), MiB | {f(mib('idle_rss_kb_portcullis'))} | "
      f"{f(mib('idle_rss_kb_baseline'))} | {f(mib('idle_rss_kb_flask'))} (master + 2 workers) |")
print(f"| peak RSS (VmHWM after all runs), MiB | {f(mib('peak_rss_kb_portcullis'))} | "
      f"{f(mib('peak_rss_kb_baseline'))} | {f(mib('peak_rss_kb_flask'))} (sum of 3 processes) |")
print(f"| start to first 200 on /health/live, ms | {meta.get('ready_ms')} (existing data dir); "
      f"{meta.get('ready_first_ms')} (first start: creates database, keys, certificate) | "
      f"{meta.get('baseline_ready_ms')} | {meta.get('flask_ready_ms') or 'n/a'} (GET /hello) |")
print(f"| one password hash / verify, ms (median of {hash_info.get('count')}, one at a time) | "
      f"{f(hash_info.get('hashMedianMs'), 1)} / {f(hash_info.get('verifyMedianMs'), 1)} "
      f"(Argon2id m={hash_info.get('memoryKiB')} KiB, t={hash_info.get('iterations')}) | n/a | "
      f"{meta.get('flask_hash_ms')} |")
print()



def audit_share():
    """Issue 4: what the audit trail adds to one password login, against one grant (or None without data).

    The added cost comes from `Portcullis.Bench audit` (A/B: the login's database work with and without its event,
    interleaved; wall = difference of the means, which includes the extra WAL pages and checkpoints; CPU = the process's
    CPU time difference plus the background sealing per event). Two denominators:
    - the measured grant: cores ÷ req/s of the `password` scenario (machine time per grant; the grant is CPU-bound,
      so about one grant's unqueued latency, and smaller than the mean latency under load, conn ÷ req/s). On a
      busy machine the server did not have all the cores, so this overstates the grant and understates the share;
    - one password verification (`Portcullis.Bench hash`): a lower bound of any login's time, so that share is an upper bound,
      and the one the target is judged on. It is also the fallback when the `password` scenario did not run.
    """
    if not audit_info or not hash_info.get("verifyMedianMs"):
        return None
    wall = audit_info["auditMeanUs"]
    cpu = audit_info["auditCpuUs"] + audit_info["sealPerEventCpuUs"] * audit_info["auditRowsPerLogin"]
    verify = hash_info["verifyMedianMs"] * 1000
    lines = [f"{wall / verify:.2%} wall / {cpu / verify:.2%} CPU of one password verification, {verify / 1000:,.1f} ms "
             "(`Portcullis.Bench hash`: a lower bound of a login, so these shares are upper bounds"
             + (")" if agg("password", "portcullis") else "; the `password` scenario did not run)")]
    pw = agg("password", "portcullis")
    if pw and pw["rps"] > 0:
        grant = cores / pw["rps"] * 1e6
        latency = int(pw["conn"]) / pw["rps"] * 1e6
        lines.insert(0, f"{wall / grant:.2%} wall / {cpu / grant:.2%} CPU of one measured password grant, "
                        f"{grant / 1000:,.1f} ms of machine time ({cores} cores ÷ {pw['rps']:,.1f} req/s in the `password` "
                        f"scenario; its mean latency at {pw['conn']} connections, conn ÷ req/s, is {latency / 1000:,.1f} ms)")
    return wall, cpu, verify, lines


audit = audit_share()
if audit:
    wall, cpu, verify, lines = audit
    a = audit_info
    print(f"Audit writes per login: {wall:,.0f} µs wall, {cpu:,.0f} µs CPU = " + "; = ".join(lines) + ".\n")
    print(f"- 95% intervals of the means (from the spread of the {a['count'] // a['block']:,} block pairs): wall ±"
          f"{a['auditMeanCi95Us']:,.0f} µs, CPU ±{a['auditCpuCi95Us']:,.0f} µs.")
    print(f"- Wall: mean of {a['count']:,} logins' database work with the event minus {a['count']:,} without, interleaved "
          f"(median {a['auditMedianUs']:,.0f} µs; staging the event {a['recordMedianUs']:,.0f} µs + the SaveChanges that "
          f"carries it {a['carrierSaveWithMedianUs'] - a['carrierSaveWithoutMedianUs']:+,.0f} µs, medians). CPU: "
          f"{a['auditCpuUs']:,.0f} µs on the login path + {a['sealPerEventCpuUs']:,.0f} µs of background sealing per event.")
    print(f"- A failed login's audit write (its own SaveChanges): {a['failedLoginWriteMeanUs']:,.0f} µs mean "
          f"({a['failedLoginWriteMedianUs']:,.0f} median), {a['failedLoginWriteCpuUs']:,.0f} µs CPU = "
          f"{a['failedLoginWriteMeanUs'] / verify:.2%} of the verification (or dummy hash) every failed login does.")
    print(f"- `Portcullis.Bench audit --count {a['count']}` on a temporary SQLite file; load average then {a.get('loadAverage')}.\n")

anon, badsig, me = agg("me_anon", "portcullis"), agg("me_badsig", "portcullis"), agg("me", "portcullis")
if anon and badsig and me:
    us = lambda a: 1e6 / a["rps"]  # noqa: E731  (wall time per request at saturation, all cores)
    print("Where `/api/me`'s time goes (µs of machine time per request at saturation = 1e6 ÷ req/s; differences "
          "between scenarios in the same run):\n")
    print("| step | µs per request |")
    print("|---|---|")
    base = agg("me", "baseline")
    if base:
        print(f"| bare Kestrel + TLS + JSON (baseline) | {us(base):.0f} |")
        print(f"| + Portcullis pipeline up to the 401 (no token) | {us(anon) - us(base):+.0f} |")
    print(f"| + one ES256 signature verification (failing) | {us(badsig) - us(anon):+.0f} |")
    print(f"| + claims checks, revocation, authorization, handler (2 EF Core queries), JSON | {us(me) - us(badsig):+.0f} |")
    print(f"| = /api/me | {us(me):.0f} |")
    print()

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
cpu_path = os.path.join(os.path.dirname(runs_path), "cpu.tsv")
cpu = {}  # (scenario, server) -> [(server ticks, upstream ticks)]
if os.path.exists(cpu_path):
    for line in open(cpu_path):
        rnd, scenario, server, ticks, up_ticks = line.rstrip("\n").split("\t")
        cpu.setdefault((scenario, server), []).append((int(ticks), int(up_ticks)))


def cpu_us(scenario, server, upstream=False):
    """CPU µs per request of the serving process (or of the upstream): the lowest round. Noise only adds CPU (JIT
    tier-up in the first seconds, contention with other work), so the lowest round is the closest to steady state."""
    rs, c = runs.get((scenario, server)), cpu.get((scenario, server))
    if not rs or not c or len(rs) != len(c):
        return None
    per_round = [t[1 if upstream else 0] * TICK_US / r["requests"] for r, t in zip(rs, c) if r["requests"]]
    return min(per_round) if per_round else None


gw, up, yp, yt = (agg("gateway", s) for s in ("portcullis", "upstream", "yarp", "yarptls"))
if gw and up:
    us = lambda a: 1e6 / a["rps"]  # noqa: E731
    ratio = lambda a, b: f"{a['rps'] / b['rps']:.2f}×" if a and b else "n/a"  # noqa: E731
    print("The gateway against its ceiling (POST /register, same upstream, same run; µs of machine time per request at "
          "saturation = 1e6 ÷ req/s — the load generator and the upstream share the 2 cores, so every row includes them):\n")
    print("| path | req/s | µs per request | ÷ upstream direct | CPU µs per request: serving process | CPU µs: upstream |")
    print("|---|---|---|---|---|---|")
    c = lambda server, u=False: f(cpu_us("gateway", server, u), 1)  # noqa: E731
    print(f"| upstream direct (bench/Baseline, plain HTTP) | {up['rps']:,.0f} | {us(up):.0f} | 1.00× | {c('upstream')} | {c('upstream')} |")
    if yp:
        print(f"| bare YARP (MapForwarder), plain HTTP → upstream | {yp['rps']:,.0f} | {us(yp):.0f} | {ratio(yp, up)} | {c('yarp')} | {c('yarp', True)} |")
    if yt:
        print(f"| bare YARP (MapForwarder), TLS → upstream | {yt['rps']:,.0f} | {us(yt):.0f} | {ratio(yt, up)} | {c('yarptls')} | {c('yarptls', True)} |")
    print(f"| Portcullis gateway (TLS, JWT, role, rate limit, JSON Schema, YARP) → upstream | {gw['rps']:,.0f} | {us(gw):.0f} | {ratio(gw, up)} "
          f"| {c('portcullis')} | {c('portcullis', True)} |")
    print()
    print("CPU µs per request = the process's utime+stime over a measured run ÷ the requests it served, lowest round "
          "(steadier than req/s on a busy machine; wrk's own CPU is in neither; JIT tier-up inflates short first rounds, "
          "so use ROUNDS ≥ 2).\n")
    print(f"- gateway ÷ upstream: **{ratio(gw, up)}**; bare YARP ÷ upstream: {ratio(yp, up)} (HTTP), {ratio(yt, up)} (TLS); "
          f"gateway ÷ bare YARP over TLS: **{ratio(gw, yt)}**.")
    if yt:
        print(f"- Portcullis's own work on top of a bare TLS proxy hop: {us(gw) - us(yt):+.0f} µs per request; the TLS proxy "
              f"hop itself: {us(yt) - us(up):+.0f} µs on top of the direct request.")
        if cpu_us("gateway", "portcullis") is not None and cpu_us("gateway", "yarptls") is not None:
            print(f"- In CPU of the proxying process: gateway {cpu_us('gateway', 'portcullis'):.0f} µs vs bare YARP over TLS "
                  f"{cpu_us('gateway', 'yarptls'):.0f} µs per request (Portcullis adds "
                  f"{cpu_us('gateway', 'portcullis') - cpu_us('gateway', 'yarptls'):+.0f} µs); the upstream answers a direct request in "
                  f"{cpu_us('gateway', 'upstream'):.0f} µs.")
    print()

print("## Targets (issue 8)\n")
print("| target | measured | met? |")
print("|---|---|---|")


def row(target, measured, ok):
    print(f"| {target} | {measured} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |")


p, b, fl = agg("me", "portcullis"), agg("me", "baseline"), agg("me", "flask")
if p and b:
    row("/api/me ≥ 0.67× bare Kestrel", f"{p['rps'] / b['rps']:.2f}×", p["rps"] / b["rps"] >= 0.67)
if p and fl:
    row("/api/me ≥ 10× Flask", f"{p['rps'] / fl['rps']:.1f}× (Flask without TLS)", p["rps"] / fl["rps"] >= 10)
g, u = agg("gateway", "portcullis"), agg("gateway", "upstream")
if g and u:
    row("gateway request costs ≤ 2× a direct request to the upstream (req/s ≥ 0.5×)", f"{g['rps'] / u['rps']:.2f}× "
        f"({g['rps']:,.0f} vs {u['rps']:,.0f} req/s; the direct request is plain HTTP)", g["rps"] / u["rps"] >= 0.5)
    if yt:
        row("(ceiling) bare YARP over TLS, no checks, ≤ 2× a direct request", f"{yt['rps'] / u['rps']:.2f}× "
            f"({yt['rps']:,.0f} req/s); gateway ÷ bare YARP TLS = {g['rps'] / yt['rps']:.2f}×", yt["rps"] / u["rps"] >= 0.5)
pw = agg("password", "portcullis")
verify = hash_info.get("verifyMedianMs")
if pw and verify:
    ceiling = cores / (verify / 1000)
    row(f"password grant ≥ 90% of cores ÷ hash time ({cores} ÷ {verify:.1f} ms = {ceiling:,.0f}/s)",
        f"{pw['rps']:,.0f}/s = {pw['rps'] / ceiling:.0%}" + (
            f"; the hasher alone on {hash_info['parallelThreads']} threads (no server) does "
            f"{hash_info['parallelVerifyPerSecond']:,.0f}/s, so the grant reaches "
            f"{pw['rps'] / hash_info['parallelVerifyPerSecond']:.0%} of that" if hash_info.get("parallelVerifyPerSecond") else ""),
        pw["rps"] >= 0.9 * ceiling)
if audit:
    wall, cpu, verify, _ = audit
    wall_hi, cpu_hi = wall + audit_info["auditMeanCi95Us"], cpu + audit_info["auditCpuCi95Us"]
    shown = max(wall_hi, cpu_hi) < 0.05 * verify
    row("audit writes add < 5% to a login (issue 4; against one password verification, an upper bound; "
        "met when the 95% interval is below 5%)",
        f"{wall / verify:.2%} wall (≤ {wall_hi / verify:.2%}), {cpu / verify:.2%} CPU (≤ {cpu_hi / verify:.2%})"
        + ("" if shown or max(wall, cpu) >= 0.05 * verify else ": inconclusive, too noisy"),
        True if shown else (False if max(wall, cpu) >= 0.05 * verify else None))
for scenario in ("refresh", "client_credentials"):
    a = agg(scenario, "portcullis")
    if a:
        row(f"{scenario} ≥ 1,500/s on 2 cores", f"{a['rps']:,.0f}/s on {cores} cores", a["rps"] >= 1500)
if meta.get("idle_rss_kb_portcullis"):
    row("idle RSS ≤ 120 MB", f"{mib('idle_rss_kb_portcullis'):.0f} MiB", mib("idle_rss_kb_portcullis") * 1.048576 <= 120)
if meta.get("ready_ms"):
    row("start to ready ≤ 2 s on SQLite", f"{int(meta['ready_ms']) / 1000:.2f} s (first start {int(meta['ready_first_ms']) / 1000:.2f} s)",
        int(meta["ready_ms"]) <= 2000)
row("scale: 1M users / 10M audit events within 10%, audit first page < 100 ms", "measured by bench/scale.sh (results *-scale.md), not by this script", None)
print()

bad = []
for (scenario, server), rs in runs.items():
    a = agg(scenario, server)
    if scenario not in EXPECT_NON2XX and a["non2xx"] - a["exhausted"]:
        bad.append(f"{scenario}/{server}: {a['non2xx'] - a['exhausted']} non-2xx answers")
    if a["exhausted"]:
        bad.append(f"{scenario}/{server}: {a['exhausted']} requests sent with the token pool empty (the harness lost tokens; "
                   "answered 400 by design, not counted as server refusals)")
    if scenario in EXPECT_NON2XX and a["non2xx"] != a["requests"]:
        bad.append(f"{scenario}/{server}: {a['requests'] - a['non2xx']} answers were not rejections")
    if a["errors"]:
        bad.append(f"{scenario}/{server}: {a['errors']} socket errors")
print("Correctness of the measured answers: " + ("all as expected (2xx, or 429 for `throttled`)." if not bad else "; ".join(bad)))
