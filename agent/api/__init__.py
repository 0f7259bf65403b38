"""The HTTP API: routes (app.py), the Server-Sent Events fan-out (events.py), Prometheus (metrics.py)."""
