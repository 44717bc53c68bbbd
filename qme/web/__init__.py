"""The dashboard: a Bottle app (`qme.web.app.create_app`) with a live hub
(`qme.web.hub`) served by gevent with websockets (`qme.web.server.serve`).

Nothing here is imported by `qme run` or the Queue API; `qme start` is the way in.
"""
