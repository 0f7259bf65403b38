"""The team collector: agents ship their health logs here; people and dashboards read them back.

An ASGI service (FastAPI + uvicorn, like the agent) with no state of its own: everything is in the
store (SQLite for one machine, PostgreSQL for several collectors behind a load balancer).
"""
