#!/usr/bin/env python3
"""A webhook receiver for opencm's tests: an implementation that is not opencm's.

It verifies each delivery's Standard Webhooks signature with Python's own hmac (the secret's
base64 after `whsec_`; HMAC-SHA256 over `id.timestamp.body`) and appends one JSON line per
delivery to LOG: the path, the webhook-id, whether the signature verified, the status it
answered, and the body. What it answers depends on the path:

  /ok       200
  /flaky    500 to the first two deliveries of each webhook-id, then 200
  /down     500, until POST /heal; then 200
  /slow     waits 3 s, then 200

Usage: webhook-receiver.py PORT SECRET LOG
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, secret, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
key = base64.b64decode(secret.removeprefix("whsec_"))
lock = threading.Lock()
tries = {}
healed = False


def verified(msg_id, timestamp, body, header):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in header.split() if s.startswith("v1,")]
    fresh = abs(time.time() - int(timestamp or 0)) < 300
    return fresh and any(hmac.compare_digest(expected, g) for g in given)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global healed
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/heal":
            healed = True
            self.send_response(204)
            self.end_headers()
            return
        msg_id = self.headers.get("webhook-id", "")
        ok = verified(msg_id, self.headers.get("webhook-timestamp", "0"), body,
                      self.headers.get("webhook-signature", ""))
        with lock:
            n = tries.get((self.path, msg_id), 0) + 1
            tries[(self.path, msg_id)] = n
        if self.path == "/flaky":
            status = 500 if n <= 2 else 200
        elif self.path == "/down":
            status = 200 if healed else 500
        elif self.path == "/slow":
            time.sleep(3)
            status = 200
        else:
            status = 200
        if not ok:
            status = 401
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        with lock, open(log_path, "a") as f:
            f.write(json.dumps({"path": self.path, "id": msg_id, "verified": ok,
                                "status": status, "try": n, "event": event}) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
