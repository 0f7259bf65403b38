"""Real peers for tests: nginx with the RTMP module as the ingest, network namespaces shaped with
`tc tbf`, free ports, polling with a deadline. Every peer is stopped and every namespace deleted when
the test ends, failed or not (context managers; the pytest fixtures in conftest.py wrap them)."""
