"""The suite passes from a clone alone: recordings live in tests/fixtures, and no test or bench script
looks for them beside the checkout."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES_DIR, REPO_ROOT

# Built from parts so this file does not match itself.
OUTSIDE_LOOKUPS = ("../" + "shared", chr(34) + "shared" + chr(34) + " /", "STREAMHEALTH_" + "FIXTURES")
ENCODER_RECORDINGS = {
    "ffmpeg-5.1/progress.txt",
    "ffmpeg-5.1/rtmp-publish.c2s.bin",
    "ffmpeg-5.1/rtmp-publish.s2c.bin",
    "obs-29.0.2/rtmp-publish.c2s.bin",
    "obs-29.0.2/rtmp-publish.s2c.bin",
    "obs-29.0.2/websocket-session.jsonl",
}


def test_no_test_or_bench_script_looks_outside_the_repository() -> None:
    offenders = []
    for folder in ("tests", "bench", ".ci"):
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix not in ("", ".py", ".sh", ".toml") or "fixtures" in path.parts:
                continue
            text = path.read_text(errors="replace")
            offenders += [f"{path.relative_to(REPO_ROOT)}: {needle}" for needle in OUTSIDE_LOOKUPS if needle in text]
    assert offenders == []


def test_every_recording_the_readme_describes_is_in_the_repository() -> None:
    readme = (FIXTURES_DIR / "README.md").read_text()
    recordings = sorted(path for path in FIXTURES_DIR.rglob("*") if path.is_file() and path.name != "README.md")
    names = {str(path.relative_to(FIXTURES_DIR)) for path in recordings}
    assert names >= ENCODER_RECORDINGS, f"missing: {sorted(ENCODER_RECORDINGS - names)}"
    assert sum(1 for name in names if name.startswith("sockdiag/")) == 13  # the kernel's replies and the capture
    for path in recordings:
        name = str(path.relative_to(FIXTURES_DIR))
        assert name in readme, f"{name} has no provenance in tests/fixtures/README.md"
        assert f"{path.stat().st_size:,}".replace(",", " ") in readme, f"{name}: size in the README is out of date"


def test_fixtures_dir_fixture_points_inside_the_checkout(fixtures_dir: Path) -> None:
    assert fixtures_dir.resolve().is_relative_to(REPO_ROOT.resolve())
