"""The documentation site builds with `mkdocs build --strict` (every page in the nav, every link and
anchor found), and the reference pages generated from the code say what the code does."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.api.openapi import openapi_document
from gateway.cli.parser import build_parser
from gateway.config import ChannelAccountConfig, Settings
from gateway.reference import MARKER, cli_reference, configuration_reference, http_api_reference
from tests.docs.reference_walk import commands
from tests.support import REPO

MKDOCS = Path(sys.prefix) / "bin" / "mkdocs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MKDOCS.exists():
        pytest.skip("needs mkdocs-material (pip install -e '.[test]' installs it)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def test_the_site_builds_strictly_with_every_page_and_the_generated_references(site: Path) -> None:
    for page in ("index.html", "merchant-api/index.html", "operators/index.html", "reference/configuration/index.html",
                 "reference/cli/index.html", "reference/http-api/index.html"):
        assert (site / page).is_file(), page
    cli = (site / "reference/cli/index.html").read_text()
    assert "positions topup" in cli and "--password-stdin" in cli


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    """No internet at build time, and none needed to read it: no CDN scripts, styles or fonts."""
    outside = re.compile(r'<(?:link|script|img)[^>]+(?:href|src)="(?:https?:)?//[^"]+"')
    for page in site.rglob("*.html"):
        assert not outside.findall(page.read_text()), page


def test_the_configuration_reference_names_every_setting() -> None:
    text = configuration_reference()
    assert text.startswith(MARKER)
    for f in dataclasses.fields(Settings):
        if f.name not in ("config_path", "extra", "database_url", "merchant_settlement_days",
                          "merchant_settlement_overrides", "merchant_preferences", "split_refund_policy",
                          "channel_accounts"):
            assert f"`{f.name}`" in text, f.name
    for f in dataclasses.fields(ChannelAccountConfig):
        assert f"`{f.name}`" in text, f.name
    assert "`[splits] refund_policy`" in text and "`[settlement] merchant_days`" in text
    assert "PAYMUX_SECRET_KEY" in text


def test_the_cli_reference_has_every_command_and_option() -> None:
    text = cli_reference()
    parser = build_parser()
    if parser.epilog:
        assert parser.epilog.strip() in text   # exit codes and environment variables, as --help ends
    for words, options in commands(build_parser()):
        assert f"## {words}\n" in text, words
        for option in options:
            assert f"`{option}" in text, (words, option)


def test_the_http_reference_has_every_operation_and_schema() -> None:
    document = openapi_document()
    text = http_api_reference(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"## `{method.upper()} {path}`" in text
    for name in document["components"]["schemas"]:
        assert f"### {name}\n" in text
