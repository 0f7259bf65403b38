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
