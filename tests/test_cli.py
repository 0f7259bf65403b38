"""The `streamhealth` command line: help for every command and option, --version everywhere."""

from __future__ import annotations

import argparse

import pytest

from agent import __version__
from agent.cli import build_parser, main


def subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices) if actions else []


def test_there_is_an_agent_command() -> None:
    assert "agent" in subcommands()


@pytest.mark.parametrize("command", [[], *([name] for name in subcommands())])
def test_version_works_before_and_after_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"streamhealth {__version__}"


@pytest.mark.parametrize("command", [[], *([name] for name in subcommands())])
def test_every_command_and_option_has_help(command: list[str]) -> None:
    parser = build_parser()
    if command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[command[0]]
        assert parser.description
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"command {choice.dest} has no help"
        elif action.option_strings:
            assert action.help, f"option {action.option_strings} has no help"


def test_config_given_before_the_command_is_kept() -> None:
    args = build_parser().parse_args(["--config", "a.toml", "agent"])
    assert str(args.config) == "a.toml"
