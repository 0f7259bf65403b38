"""streamhealth agent: measures a live stream's health beside the encoder and serves it over HTTP.

Data flows one way: sources -> samples -> rules -> alerts -> (API, health log, TUI).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streamhealth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
