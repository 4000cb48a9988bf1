"""An independent walk of an argparse parser (public attributes where argparse has them), for the CLI
reference's test: every command's words and its option strings."""
from __future__ import annotations

import argparse


def commands(parser: argparse.ArgumentParser, words: str = "") -> list[tuple[str, list[str]]]:
    found = []
    for action in parser._actions:  # argparse offers no public list of a parser's actions
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                here = f"{words} {name}".strip()
                options = [a.option_strings[0] for a in child._actions
                           if a.option_strings and not isinstance(a, argparse._HelpAction)]
                found.append((here, options))
                found += commands(child, here)
    return found
