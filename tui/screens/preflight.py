"""The Preflight screen: choose the platform, run the agent's go / no-go check with live progress
per step, then the verdict banner, the checklist and the recommended settings. `r` runs it again."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, ProgressBar, Select, Static

from agent.models import PreflightReport, RecommendedSettings
from tui.render import badge
from tui.screens.base import DashboardScreen
from tui.state import PLATFORMS, PreflightState

PLATFORM_NAMES = {"tiktok": "TikTok", "twitch": "Twitch", "youtube": "YouTube", "custom": "Custom"}
VERDICT_TEXT = {
    "GO": ("GO", "ok", "Everything checked is ready: you can go live."),
    "GO_WITH_WARNINGS": ("GO WITH WARNINGS", "warning", "You can go live; read the warnings below first."),
    "NO_GO": ("NO GO", "critical", "Do not go live yet: fix the failed checks below."),
}
STATUS_LEVELS = {
    "pass": ("ok", "PASS"),
    "warn": ("warning", "WARN"),
    "fail": ("critical", "FAIL"),
    "skipped": ("nodata", "SKIP"),
}


def progress_text(preflight: PreflightState) -> Text:
    if not preflight.steps and not preflight.running:
        if preflight.error or preflight.finished or preflight.report:
            return Text("")
        return Text("Not run yet. Choose the platform and press r (or the button) to run the preflight.", style="dim")
    text = Text()
    for step in preflight.steps.values():
        mark, style = ("✓", "green") if step.done else ("…", "bold yellow")
        text.append(f"{mark} ", style=style)
        text.append(step.name, style="bold" if not step.done else "")
        if step.message:
            text.append(f"  {step.message}", style="dim")
        text.append("\n")
    if preflight.running and not preflight.steps:
        text.append("… starting\n", style="bold yellow")
    return text


def verdict_banner(preflight: PreflightState) -> Text:
    if preflight.error:
        label = "PREFLIGHT FAILED" if preflight.finished is not None else "COULD NOT START"
        return Text.assemble(badge("critical", label), " ", preflight.error)
    report = preflight.report
    if report is None:
        return Text("")
    label, level, advice = VERDICT_TEXT[report.verdict]
    platform = PLATFORM_NAMES.get(report.platform, report.platform)
    return Text.assemble(badge(level, f"  {label}  "), f" {platform}: ", (advice, "bold"))


def checklist(report: PreflightReport) -> Table:
    table = Table(expand=True, show_edge=False, box=None, padding=(0, 1))
    table.add_column("", no_wrap=True, width=6)
    table.add_column("Check", no_wrap=True, ratio=2, overflow="ellipsis")
    table.add_column("Value", no_wrap=True, ratio=1, overflow="ellipsis")
    table.add_column("Why / what to do", ratio=4)
    for check in report.checks:
        level, label = STATUS_LEVELS[check.status]
        detail = Text(check.message)
        if check.suggestion:
            detail.append(f"\n→ {check.suggestion}", style="italic")
        table.add_row(badge(level, label), check.name, check.value or "", detail)
    return table


def recommended(settings: RecommendedSettings) -> Text:
    parts = [
        ("video", f"{settings.video_bitrate_kbps} kb/s" if settings.video_bitrate_kbps else None),
        ("audio", f"{settings.audio_bitrate_kbps} kb/s" if settings.audio_bitrate_kbps else None),
        ("resolution", settings.resolution),
        ("fps", str(settings.fps) if settings.fps else None),
        ("keyframes", f"every {settings.keyframe_interval_s:g} s" if settings.keyframe_interval_s else None),
        ("encoder", settings.video_encoder),
    ]
    text = Text("Recommended: ", style="bold")
    shown = [f"{name} {value}" for name, value in parts if value]
    text.append(" · ".join(shown) if shown else "no change")
    return text


class PreflightScreen(DashboardScreen):
    BINDINGS = [Binding("r", "run_preflight", "Run / rerun")]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Horizontal(id="preflight-controls"):
            yield Select(
                [(PLATFORM_NAMES[name], name) for name in PLATFORMS], value="custom", allow_blank=False, id="platform"
            )
            yield Checkbox("Bandwidth test", value=True, id="bandwidth")
            yield Button("Run preflight (r)", id="run", variant="primary")
        yield ProgressBar(total=1.0, show_eta=False, id="preflight-progress")
        with VerticalScroll(id="preflight-body"):
            yield Static(id="preflight-steps")
            yield Static(id="verdict")
            yield Static(id="checklist")
            yield Static(id="recommended")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        snapshot = self.state.snapshot
        if snapshot is not None and snapshot.agent.platform in PLATFORMS:
            self.query_one("#platform", Select).value = snapshot.agent.platform
        super().on_mount()

    def redraw(self) -> None:
        preflight = self.state.preflight
        bar = self.query_one(ProgressBar)
        bar.update(progress=preflight.fraction or (1.0 if preflight.finished else 0.0))
        bar.display = preflight.running or preflight.finished is not None
        self.query_one("#run", Button).disabled = preflight.running
        self.query_one("#preflight-steps", Static).update(progress_text(preflight))
        self.query_one("#verdict", Static).update(verdict_banner(preflight))
        report = preflight.report
        self.query_one("#checklist", Static).update(checklist(report) if report else "")
        self.query_one("#recommended", Static).update(recommended(report.recommended) if report else "")
        self.query_one("#verdict").set_class(report is not None, "has-verdict")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run_preflight()

    def action_run_preflight(self) -> None:
        if self.state.preflight.running:
            self.notify("A preflight is already running.", severity="warning")
            return
        platform = str(self.query_one("#platform", Select).value)
        self.shapp.start_preflight(platform, bandwidth=self.query_one("#bandwidth", Checkbox).value)
