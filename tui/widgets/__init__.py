"""Widgets of the TUI: tiles, the status header, the connection banner."""
