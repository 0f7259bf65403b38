"""The local RTMP relay: encoders publish to the agent, which forwards to the ingest and sees every frame."""
