#!/usr/bin/env python3
"""An independent WebSub peer for tests/websub_out.rs: flask-websub's subscriber
(and, with --hub, its hub) in one threaded Flask server on 127.0.0.1, driven over
a small JSON control API.

    python3 tests/websub_peer.py DIR [--hub]

Prints `listening PORT` once it serves. Control endpoints:
- POST /control/subscribe {hub_url, topic_url, lease_seconds?, secret?}
  -> {callback_id} or 502 {error} (the hub's refusal, as flask-websub reports it)
- POST /control/unsubscribe {callback_id}
- GET /control/events -> every event so far: `request` (each request to a
  callback: method, id, signature header), `verified` (flask-websub confirmed a
  mode), `notification` (a delivery flask-websub accepted, so its signature was
  valid when a secret was given), `denied`, `publish` (a ping to --hub).

flask-websub sends a secret only to https hubs; tests run on plain loopback, so
this launcher tells it every hub is secure (its `is_secure`), which changes
nothing else in how it subscribes or checks signatures. Its hub runs its celery
tasks eagerly (celery's task_always_eager, no broker), in the request.
"""
import json
import os
import sys
import threading
import time

from flask import Flask, jsonify, request
import flask_websub.subscriber as subscriber_module
from flask_websub.subscriber import (Subscriber, SQLite3SubscriberStorage,
                                     SQLite3TempSubscriberStorage)
from flask_websub.errors import SubscriberError
from werkzeug.serving import make_server

subscriber_module.is_secure = lambda url: True

directory = sys.argv[1]
with_hub = "--hub" in sys.argv[2:]

app = Flask("websub_peer")
app.config["SERVER_NAME"] = None
app.config["AUTO_SET_SECRET"] = False
events = []
lock = threading.Lock()


def record(kind, **fields):
    with lock:
        events.append(dict(kind=kind, time=time.time(), **fields))


subscriber = Subscriber(
    SQLite3SubscriberStorage(os.path.join(directory, "subscriber.sqlite")),
    SQLite3TempSubscriberStorage(os.path.join(directory, "temp.sqlite")),
)
app.register_blueprint(subscriber.build_blueprint(url_prefix="/callbacks"))


@subscriber.add_listener
def on_notification(topic_url, callback_id, body):
    record("notification", topic=topic_url, id=callback_id,
           body=body.decode("utf-8", "replace"),
           content_type=request.headers.get("Content-Type"),
           link=request.headers.get("Link"))


@subscriber.add_success_handler
def on_success(topic_url, callback_id, mode):
    record("verified", topic=topic_url, id=callback_id, mode=mode)


@subscriber.add_error_handler
def on_error(topic_url, callback_id, reason):
    record("denied", topic=topic_url, id=callback_id, reason=reason)


@app.before_request
def log_request():
    if request.path.startswith("/callbacks/"):
        record("request", method=request.method, id=request.path.rsplit("/", 1)[-1],
               mode=request.args.get("hub.mode"),
               signature=request.headers.get("X-Hub-Signature"))
    elif request.path == "/hub" and request.form.get("hub.mode") == "publish":
        record("publish", topic=request.form.get("hub.topic"),
               url=request.form.get("hub.url"))


@app.post("/control/subscribe")
def control_subscribe():
    args = request.get_json()
    try:
        callback_id = subscriber.subscribe(**args)
    except SubscriberError as err:
        return jsonify(error=str(err)), 502
    return jsonify(callback_id=callback_id)


@app.post("/control/unsubscribe")
def control_unsubscribe():
    try:
        subscriber.unsubscribe(request.get_json()["callback_id"])
    except SubscriberError as err:
        return jsonify(error=str(err)), 502
    return jsonify(ok=True)


@app.get("/control/events")
def control_events():
    with lock:
        return jsonify(list(events))


if with_hub:
    from celery import Celery
    from flask_websub.hub import Hub, SQLite3HubStorage

    celery = Celery("websub_peer", broker="memory://", backend="cache+memory://")
    celery.conf.task_always_eager = True
    app.config["PUBLISH_SUPPORTED"] = True
    hub = Hub(SQLite3HubStorage(os.path.join(directory, "hub.sqlite")), celery,
              BACKOFF_BASE=0.1, MAX_ATTEMPTS=2)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))

server = make_server("127.0.0.1", 0, app, threaded=True)
# url_for(_external=True) names the callback after the Host of the request that
# asks to subscribe: the control requests come to 127.0.0.1:PORT.
print("listening", server.server_port, flush=True)
server.serve_forever()
