"""Stream sessions: one live stream each (see agent/models/sessions.py for the records)."""
