"""ffmpeg's `-progress` output: the sans-I/O parser and tracker (`progress`), the wrapper's local mode
(`wrapper`). The source that feeds them from a file or HTTP is `agent.sources.ffmpeg`."""
