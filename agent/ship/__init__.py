"""Shipping the health log to a collector: sequence numbers, the log as the spool, batches and backoff."""
