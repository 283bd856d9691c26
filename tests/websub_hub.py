#!/usr/bin/env python3
"""A WebSub hub and publisher on loopback, for the tests and the benchmark of
tributary's subscriber side: the hub of flask-websub (PyPI `flask-websub`, a hub,
publisher and subscriber by other authors), run with Celery in eager mode (each task
runs at once in the request that queues it; no broker), and topics served with its
publisher decorator, which adds the `Link: <topic>; rel="self", <hub>; rel="hub"`
header the hub requires of a topic.

    python3 tests/websub_hub.py [--storage FILE] [--max-lease SECONDS] [--max-seconds S]

Prints one line of JSON with the port it listens on (127.0.0.1, an ephemeral port),
then serves until killed, or until its standard input closes (until S seconds have
passed with --max-seconds). Exit status 3 (and a
line on stderr) when flask-websub or Celery cannot be imported.

Routes:
- `POST /hub`: the hub (subscribe, unsubscribe; publish with `hub.mode=publish`,
  `hub.topic=URL`: the hub fetches the topic and POSTs it to every subscriber).
- `GET /feeds/NAME.xml`: an Atom feed with `atom:link` rel="hub" and rel="self" (the
  hub is this one unless the feed was made with another) and its entries.
- `POST /admin/entry?feed=NAME&id=ID&title=T[&hub=URL]`: adds an entry to a feed (the
  feed is made on first use; `hub` only then: the hub it advertises).
- `GET /admin/subscriptions`: the hub's storage, as JSON: topic, callback, expires
  (Unix seconds), secret.
- `GET /admin/stats`: how many times each feed was fetched.
- `POST /admin/down`: the hub answers 503 from now on (the topics are still served).
"""

import argparse
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time

try:
    from celery import Celery
    from flask import Flask, Response, abort, request
    from flask_websub.hub import Hub, SQLite3HubStorage
    from flask_websub.publisher import publisher
    from werkzeug.serving import make_server
except ImportError as err:  # pragma: no cover - the caller says how to install it
    print(f"flask-websub is not importable: {err}", file=sys.stderr)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", help="the hub's SQLite file (default: a temporary one)")
    parser.add_argument("--max-lease", type=int, default=31 * 86400,
                        help="the longest lease the hub grants, in seconds")
    parser.add_argument("--max-seconds", type=float,
                        help="exit after this long, and not when standard input closes")
    args = parser.parse_args()
    storage_path = args.storage or os.path.join(tempfile.mkdtemp(prefix="websub-hub-"), "hub.db")

    app = Flask(__name__)
    app.config["PUBLISH_SUPPORTED"] = True
    app.config["HUB_MIN_LEASE_SECONDS"] = 1
    app.config["HUB_MAX_LEASE_SECONDS"] = args.max_lease
    app.config["HUB_DEFAULT_LEASE_SECONDS"] = min(10 * 86400, args.max_lease)
    celery = Celery("hub", broker="memory://", backend="cache+memory://")
    celery.conf.task_always_eager = True
    celery.conf.task_eager_propagates = False
    hub = Hub(SQLite3HubStorage(storage_path), celery, REQUEST_TIMEOUT=5, BACKOFF_BASE=0.01,
              MAX_ATTEMPTS=2)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))

    lock = threading.Lock()
    feeds = {}  # name -> {"hub": url or None, "entries": [(id, title, updated)]}
    fetches = {}

    def hub_url():
        return request.host_url.rstrip("/") + "/hub"

    def feed_xml(name, feed, self_url, hub):
        entries = "".join(
            f"<entry><id>urn:{name}:{eid}</id><title>{title}</title>"
            f"<link href=\"http://example.org/{name}/{eid}\"/><updated>{updated}</updated></entry>"
            for eid, title, updated in reversed(feed["entries"]))
        return (
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
            "<feed xmlns=\"http://www.w3.org/2005/Atom\">"
            f"<id>urn:feed:{name}</id><title>Feed {name}</title><updated>2026-01-01T00:00:00Z</updated>"
            f"<link rel=\"hub\" href=\"{hub}\"/><link rel=\"self\" href=\"{self_url}\"/>"
            f"{entries}</feed>")

    @app.route("/feeds/<name>.xml")
    def topic(name):
        with lock:
            feed = feeds.setdefault(name, {"hub": None, "entries": []})
            fetches[name] = fetches.get(name, 0) + 1
            hub = feed["hub"] or hub_url()
            snapshot = {"hub": feed["hub"], "entries": list(feed["entries"])}
        self_url = request.base_url

        @publisher(self_url=self_url, hub_url=hub)
        def view():
            return Response(feed_xml(name, snapshot, self_url, hub),
                            content_type="application/atom+xml; charset=utf-8")
        return view()

    @app.route("/admin/entry", methods=["POST"])
    def add_entry():
        name = request.args.get("feed") or abort(400)
        with lock:
            feed = feeds.setdefault(name, {"hub": request.args.get("hub"), "entries": []})
            updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            feed["entries"].append((request.args["id"], request.args.get("title", ""), updated))
        return "ok\n"

    @app.route("/admin/subscriptions")
    def subscriptions():
        connection = sqlite3.connect(storage_path)
        try:
            rows = connection.execute(
                "select topic_url, callback_url, expiration_time, secret from hub").fetchall()
        finally:
            connection.close()
        return Response(json.dumps([
            {"topic": t, "callback": c, "expires": e, "secret": s} for t, c, e, s in rows]),
            content_type="application/json")

    down = threading.Event()

    @app.before_request
    def refuse_when_down():
        if down.is_set() and request.path.startswith("/hub"):
            return "the hub is down\n", 503
        return None

    @app.route("/admin/down", methods=["POST"])
    def take_down():
        down.set()
        return "ok\n"

    @app.route("/admin/stats")
    def stats():
        with lock:
            return Response(json.dumps(fetches), content_type="application/json")

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(json.dumps({"port": server.server_port}), flush=True)
    if args.max_seconds:
        threading.Timer(args.max_seconds, os._exit, [0]).start()
    else:
        # Stop with the test that started it, even when it dies without killing us.
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
