"""Alert notifications: alert changes go out to webhooks (generic JSON, Slack, Discord), grouped and rate-limited.

Nobody watches a screen for a whole show. The notifier is a sink of the agent's records: it reads the alert
changes the rule engine produced (already redacted) and never measures or decides anything itself.
"""
