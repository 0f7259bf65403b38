"""Network measurement helpers: probes, sliding-window statistics, TCP_INFO, link facts.

Used by the network source (agent/sources/network.py) and the bandwidth tests; no sample models are
built here, only the measurements they are made of.
"""
