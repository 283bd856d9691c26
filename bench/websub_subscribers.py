#!/usr/bin/env python3
"""WebSub subscribers for bench/websub-out.sh: N callbacks in one threaded server on
127.0.0.1, each subscribed to a topic of a hub; every delivery's arrival time is
recorded with the document's `<title>`-marked version.

Python 3 standard library only. Everything stays on loopback; the server stops by
itself after --max-seconds.

    python3 bench/websub_subscribers.py --hub URL --topic URL [--topic URL ...] \\
        --count 100 --secret S --marker 'Bench river ' --max-seconds 600

Prints `ready PORT` once every subscription is verified (within 60 s), then one line
per delivery: `delivery CALLBACK_INDEX MARKER_VALUE UNIX_TIME SIGNATURE_OK`. A
delivery whose X-Hub-Signature does not match the secret is reported with
SIGNATURE_OK 0.
"""
import argparse
import hashlib
import hmac
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--hub", required=True)
parser.add_argument("--topic", action="append", required=True)
parser.add_argument("--count", type=int, default=100)
parser.add_argument("--secret", default="")
parser.add_argument("--marker", default="Bench river ")
parser.add_argument("--max-seconds", type=float, default=600)
args = parser.parse_args()

verified = set()
lock = threading.Lock()
out = threading.Lock()
marker = re.compile(re.escape(args.marker).encode() + rb"(\d+)")


class Callback(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def index(self):
        return int(self.path.split("?")[0].rsplit("/", 1)[-1])

    def do_GET(self):  # verification of intent: echo the challenge
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        challenge = query.get("hub.challenge", [""])[0].encode()
        with lock:
            verified.add(self.index())
        self.send_response(200)
        self.send_header("Content-Length", str(len(challenge)))
        self.end_headers()
        self.wfile.write(challenge)

    def do_POST(self):  # a delivery
        now = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = 1
        if args.secret:
            expected = "sha256=" + hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
            ok = int(hmac.compare_digest(expected, self.headers.get("X-Hub-Signature", "")))
        found = marker.search(body)
        with out:
            print("delivery", self.index(), found.group(1).decode() if found else "-", f"{now:.6f}", ok, flush=True)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]

for i in range(args.count):
    topic = args.topic[i % len(args.topic)]
    form = {"hub.mode": "subscribe", "hub.topic": topic,
            "hub.callback": f"http://127.0.0.1:{port}/cb/{i}"}
    if args.secret:
        form["hub.secret"] = args.secret
    request = urllib.request.Request(args.hub, data=urllib.parse.urlencode(form).encode())
    for attempt in range(100):  # 503 while the hub verifies its most at once
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 202, answer.status
            break
        except urllib.error.HTTPError as err:
            if err.code != 503 or attempt == 99:
                raise
            time.sleep(0.05)
deadline = time.time() + 60
while time.time() < deadline:
    with lock:
        if len(verified) >= args.count:
            break
    time.sleep(0.05)
else:
    sys.exit(f"only {len(verified)} of {args.count} subscriptions verified in 60 s")
print("ready", port, flush=True)
time.sleep(args.max_seconds)
