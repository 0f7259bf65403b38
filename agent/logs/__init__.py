"""Health logs: JSON Lines written as the agent runs (writer.py) and read back (reader.py)."""
