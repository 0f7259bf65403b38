"""The relay tests replay the same recorded sessions as the RTMP core's tests."""

from tests.agent.rtmp.conftest import recording

__all__ = ["recording"]
