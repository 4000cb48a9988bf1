"""`paymux --help` is enough to start: every option says what it is (amounts their unit), the exit
codes and every environment variable the code reads are listed, `--config` goes anywhere."""
from __future__ import annotations

import argparse
import re
from typing import Iterator

import pytest

from gateway.cli import EXIT_CODES
from gateway.cli.parser import ENVIRONMENT, build_parser
from tests.support import REPO


def parsers(parser: argparse.ArgumentParser, path: str = "paymux") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    missing, walked = [], 0
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            walked += 1
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert walked > 150   # the walk reached the leaves
    assert missing == []


def test_every_amount_says_its_unit() -> None:
    amounts = [(path, action.help) for path, parser in parsers(build_parser()) for action in parser._actions
               if action.dest == "amount"]
    assert len(amounts) >= 5   # pay, refund, freeze, unfreeze, positions topup
    assert all("minor units" in text for _, text in amounts), amounts


def test_the_help_lists_the_exit_codes_and_each_environment_variable_the_code_reads(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for code in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+\w", text, re.M), code
    read = set()
    for folder in ("gateway", "ledger", "plugins"):
        for source in (REPO / folder).rglob("*.py"):
            read |= set(re.findall(r"\b(PAYMUX_[A-Z_]+)", source.read_text()))
    assert {"PAYMUX_CONFIG", "PAYMUX_MERCHANT_SECRET", "PAYMUX_OPERATOR_PASSWORD"} <= read   # the grep works
    assert read <= set(ENVIRONMENT), read - set(ENVIRONMENT)
    for name in ENVIRONMENT:
        assert name in text


@pytest.mark.parametrize("argv", [["--config", "x.toml", "ledger", "balances"],
                                  ["ledger", "--config", "x.toml", "balances"],
                                  ["ledger", "balances", "--config", "x.toml"]])
def test_config_is_taken_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).config == "x.toml"


def test_config_not_given_after_the_command_leaves_the_one_before() -> None:
    assert build_parser().parse_args(["--config", "a.toml", "positions", "--json"]).config == "a.toml"
    assert build_parser().parse_args(["positions"]).config is None


@pytest.mark.parametrize("group, fn", [("positions", "positions:list_positions"),
                                       ("merchant", "merchants:list_merchants"),
                                       ("events", "events:list_events"), ("operator", "operators:manage")])
def test_a_group_alone_is_its_list_with_the_lists_options(group: str, fn: str) -> None:
    alone = build_parser().parse_args([group])
    assert alone.fn == fn and getattr(alone, f"{group}_command") == "list"
    if group != "operator":
        assert build_parser().parse_args([group, "--json"]).json is True
        assert build_parser().parse_args([group, "list", "--json"]).json is True
