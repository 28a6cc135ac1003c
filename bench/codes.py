#!/usr/bin/env python3
"""Authorization codes for the code-exchange benchmark (bench/run.sh, scenario `code`).

Signs in once on the real sign-in page (antiforgery token and cookies, like a browser without JavaScript), then asks
/connect/authorize for N codes for a first-party public client, all with the same PKCE challenge, on one kept-alive
TLS connection. Prints one code per line. Codes live 60 seconds: make the pool right before the run.

usage: codes.py BASE CAFILE USERNAME PASSWORD CLIENT_ID REDIRECT_URI CHALLENGE N
"""
import http.client
import re
import ssl
import sys
import urllib.parse as up

base, cafile, username, password, client_id, redirect, challenge, n = sys.argv[1:9]
n = int(n)
url = up.urlsplit(base)
conn = http.client.HTTPSConnection(url.hostname, url.port, context=ssl.create_default_context(cafile=cafile), timeout=30)
cookies = {}


def request(method, path, body=None, headers=None):
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            if val:
                cookies[key] = val
            else:
                cookies.pop(key, None)
    return response, data


_, page = request("GET", "/signin")
token = re.search(rb'name="__af"[^>]*value="([^"]+)"', page) or re.search(rb'value="([^"]+)"[^>]*name="__af"', page)
if token is None:
    sys.exit("no antiforgery token on /signin")
form = up.urlencode({"Username": username, "Password": password, "__af": token.group(1).decode()})
response, _ = request("POST", "/signin", form, {"Content-Type": "application/x-www-form-urlencoded"})
if response.status != 302:
    sys.exit(f"sign-in answered {response.status}")

query = up.urlencode({
    "client_id": client_id, "redirect_uri": redirect, "response_type": "code", "scope": "openid",
    "code_challenge": challenge, "code_challenge_method": "S256",
})
out = []
for _ in range(n):
    response, _ = request("GET", "/connect/authorize?" + query)
    location = response.getheader("Location") or ""
    code = up.parse_qs(up.urlsplit(location).query).get("code")
    if response.status != 302 or not code:
        sys.exit(f"authorize answered {response.status} {location[:120]}")
    out.append(code[0])
print("\n".join(out))
