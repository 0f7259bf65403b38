"""The TUI's screens: Live (default), Alerts, Preflight, History, and the help overlay."""
