"""Every interval that scans the machine or sends traffic has a floor: 0.001 took a whole core and made
1,663 TCP connects to the ingest in 16 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import load_settings


@pytest.mark.parametrize(
    ("section", "name", "floor"),
    [
        ("sources.network", "interval_s", 0.25),
        ("sources.network", "link_scan_interval_s", 1.0),
        ("sources.network", "upload_users_interval_s", 5.0),
        ("sources.system", "interval_s", 0.1),
        ("sources.system", "process_scan_interval_s", 0.2),
        ("sources.uplink", "discover_interval_s", 0.2),
        ("sources.obs", "poll_interval_s", 0.1),
        ("sources.obs", "fast_poll_interval_s", 0.1),
        ("sources.ffmpeg", "file_poll_interval_s", 0.05),
    ],
)
def test_an_interval_below_its_floor_is_refused_naming_the_field(
    tmp_path: Path, section: str, name: str, floor: float
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{name} = 0.001\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert f"{section}.{name}: " in str(caught.value)
    assert f"greater than or equal to {floor:g}" in str(caught.value)
    config.write_text(f"[{section}]\n{name} = {floor}\n")
    settings = load_settings(config, environ={})
    node: object = settings
    for part in section.split("."):
        node = getattr(node, part)
    assert getattr(node, name) == floor
