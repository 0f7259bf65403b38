"""The relay's settings section as the relay's modules import it; the model lives in the settings tree
(agent/settings_relay.py), so that the tree never imports the relay."""

from agent.settings_relay import RelaySettings

__all__ = ["RelaySettings"]
