"""The `[notify]` settings section: which webhooks get which alert changes, and how often at most.

Kept beside the notifier and free of heavy imports so `agent/settings.py` can hold it as one field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

WebhookFormat = Literal["json", "slack", "discord"]


class WebhookSettings(BaseModel):
    """One webhook. Its URL is a secret: Slack's and Discord's carry the credential in the path."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    format: WebhookFormat = "json"
    min_severity: Literal["warning", "critical"] = "warning"
    kinds: list[str] = Field(default_factory=list, max_length=100, description="Alert kinds to send; empty: all.")
    send_cleared: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        value = url.get_secret_value()
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (the webhook address Slack or Discord gives you)")
        return url


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookSettings] = Field(default_factory=list, max_length=20)
    group_s: float = Field(5.0, ge=0, le=300, description="Changes within this window go out as one message.")
    max_per_minute: int = Field(6, ge=1, le=60, description="Messages per webhook per minute at most.")
    timeout_s: float = Field(10.0, gt=0, le=60)
    max_attempts: int = Field(6, ge=1, le=20, description="Tries of one message before it is given up (logged).")
    agent_name: str | None = Field(None, max_length=100, description="Shown in messages; default: the host name.")
