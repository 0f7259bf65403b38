"""Where things live on disk: the shipped configs and the user's config, data and log folders."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "streamhealth"


def shipped_configs_dir() -> Path:
    """`configs/` as shipped: beside the package in a source tree, inside it in a wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "configs", package_dir / "_configs"):
        if (candidate / "default.toml").is_file():
            return candidate
    raise FileNotFoundError(f"the shipped configs/ folder is missing next to {package_dir}: reinstall streamhealth")


def user_config_file() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def default_logs_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME) / "logs"


def user_data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME)


def relay_ingest_file() -> Path:
    """Settings layer written by `streamhealth relay point-obs`: OBS's original server and key as the
    relay's ingest (read between configs/default.toml and the user's file, so the user's file wins)."""
    return user_data_dir() / "relay-ingest.toml"


def obs_original_service_file() -> Path:
    """OBS's stream service settings before `relay point-obs`, for `--undo`."""
    return user_data_dir() / "obs-stream-service.json"
