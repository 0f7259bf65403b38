"""OBS Studio over obs-websocket v5: the sans-I/O protocol (`protocol`), a thin asyncio client on the
`websockets` library (`client`), what we derive from OBS's counters (`derive`) and the backup-scene plan
(`backup`). The source that ties them to the agent is `agent.sources.obs`."""
