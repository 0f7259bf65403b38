"""The shipping line of the sources tile: is this agent's log reaching the team collector, and how far behind."""

from __future__ import annotations

from rich.text import Text

from agent.models import ShippingState
from tui.render.levels import badge
from tui.render.numbers import fmt_age


def shipping_level(shipping: ShippingState) -> str:
    if shipping.unshipped_lines_deleted_total:
        return "critical"
    if shipping.state in ("rejected", "not_shipping") or shipping.batches_set_aside_total:
        return "warning"
    if not shipping.connected and (shipping.oldest_waiting_age_s or 0) > 60:
        return "warning"
    return "ok"


def shipping_line(shipping: ShippingState) -> Text:
    """e.g. `shipping  CONNECTED 0 waiting` or `shipping  RETRYING 1,204 waiting, oldest 20m: ...`."""
    text = Text(f"{'shipping':<9}", style="bold")
    text.append_text(badge(shipping_level(shipping), shipping.state.replace("_", " ").upper()))
    detail = f" {shipping.lines_waiting:,} waiting"
    if shipping.oldest_waiting_age_s is not None and shipping.lines_waiting:
        detail += f", oldest {fmt_age(shipping.oldest_waiting_age_s)}"
    if shipping.unshipped_lines_deleted_total:
        detail += f", {shipping.unshipped_lines_deleted_total:,} LOST to retention"
    if shipping.last_error and not shipping.connected:
        detail += f": {shipping.last_error}"
    text.append(detail, style="dim")
    return text
