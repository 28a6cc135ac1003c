#!/usr/bin/env python3
"""The seed's app with no security code in it: Portcullis in front does TLS, tokens, roles, limits and validation.

Python standard library only. Listens on plain HTTP, 127.0.0.1 only: nothing but Portcullis should reach it.
It trusts the X-Portcullis-* identity headers because Portcullis strips any a client sends.
"""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST, PORT = "127.0.0.1", 5000


class SeedApp(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _caller(self):
        return {
            "user_id": self.headers.get("X-Portcullis-User-Id"),
            "roles": [r for r in (self.headers.get("X-Portcullis-Roles") or "").split(",") if r],
        }

    def do_GET(self):
        if self.path == "/admin" or self.path.startswith("/admin/"):
            self._answer(200, {"message": "admin area", "caller": self._caller()})
        elif self.path == "/limited":
            self._answer(200, {"message": "you are within your 5 requests per minute", "caller": self._caller()})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/register":
            self._answer(404, {"error": "not found"})
            return
        # Portcullis validated the body against schemas/register.json before it got here.
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        self._answer(201, {"registered": body["username"]})

    def log_message(self, format, *args):  # keep request bodies and headers out of the console
        pass


if __name__ == "__main__":
    print(f"seed upstream on http://{HOST}:{PORT}")
    ThreadingHTTPServer((HOST, PORT), SeedApp).serve_forever()
