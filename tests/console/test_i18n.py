"""The console speaks English and Simplified Chinese: every message of every page and handler is in
the zh_Hans catalog (found by Babel's extractor and, independently, by a plain search of the sources),
the language is the operator's own choice or else the browser's, and amounts carry their currency."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from gateway.console import i18n
from gateway.console.i18n import choose, from_accept_language, money, translations
from tests.conftest import free_port, make_settings
from tests.support.console import Browser, add_operator

CONSOLE = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> set[str]:
    found = extract_from_dir(str(CONSOLE), method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
                             keywords={"tr": (2,), "_": None, "gettext": None})
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    zh = translations("zh_Hans")
    messages = extracted()
    # The extractor's view, checked against a plain search: a message the extractor missed would stay English.
    literal = set()
    for path in (CONSOLE / "templates").glob("*.html"):
        literal |= {a or b for a, b in re.findall(r"""_\(\s*"([^"]+)"|_\(\s*'([^']+)'""", path.read_text())}
    for path in CONSOLE.glob("*.py"):
        literal |= set(re.findall(r'tr\(request, "([^"]+)"[,)]', path.read_text()))
    assert literal - messages == set()
    assert len(messages) > 150
    for message in messages:
        text = zh.gettext(message)
        assert text != message or message in ("paymux console",), f"not translated: {message!r}"
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(message)), message


@pytest.mark.parametrize(("header", "locale"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"), ("en-US,en;q=0.9", "en"), ("en;q=0.5, zh-Hans", "zh_Hans"),
    ("zh-TW", "en"), ("fr-FR", "en"), ("", "en"), (None, "en"), ("zh;q=bogus, en", "en")])
def test_the_browser_language_is_the_fallback(header: str | None, locale: str) -> None:
    assert from_accept_language(header) == locale
    assert choose("en", header) == "en" and choose("zh_Hans", header) == "zh_Hans"   # the operator's own wins
    assert choose(None, header) == locale and choose("xx", header) == locale


def test_amounts_are_major_units_with_their_currency() -> None:
    assert money(500000, "CNY") == "CNY 5,000.00"
    assert money(1234, "JPY") == "JPY 1,234"
    assert money(-1000, "CNY") == "CNY -10.00"
    assert money(None) == "-"


def test_the_operator_chooses_the_language_and_it_is_audited(gateway_factory, sqlite_url) -> None:
    gw = gateway_factory(make_settings(sqlite_url, free_port()))
    add_operator(gw, "lin", "viewer")
    chinese, english = Browser(gw.url), Browser(gw.url)
    chinese.http.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    english.http.headers["Accept-Language"] = "en-US"
    assert "paymux 控制台" in chinese.http.get("/console/login").text
    assert "登录" in chinese.http.get("/console/login").text
    assert "Sign in" in english.http.get("/console/login").text
    english.sign_in("lin")
    page = english.http.get("/console/").text
    assert "<h1>Overview</h1>" in page and 'lang="en"' in page
    # Bad input: a clear error with its code, nothing written.
    refused = english.post("/console/locale", {"locale": "tlh", "next": "/console/"})
    assert refused.status_code == 400 and "unknown_locale" in refused.text
    assert "<h1>Overview</h1>" in english.http.get("/console/").text
    done = english.post("/console/locale", {"locale": "zh_Hans", "next": "/console/payments"})
    assert (done.status_code, done.headers["location"]) == (303, "/console/payments")
    page = english.http.get("/console/payments").text        # the browser still says English; lin chose Chinese
    assert "<h1>支付</h1>" in page and 'lang="zh-Hans"' in page and "没有匹配的支付。" in page
    audit = english.http.get("/console/audit").text
    assert "operator.locale" in audit and "zh_Hans" in audit and ">null<" not in audit
    # Back to following the browser.
    english.post("/console/locale", {"locale": "", "next": "/console/"})
    assert "<h1>Overview</h1>" in english.http.get("/console/").text
    # An off-site `next` is not followed.
    assert english.post("/console/locale", {"locale": "en", "next": "https://evil.example/"}).headers["location"] \
        == "/console/"


def test_the_icon_and_the_chart_library_are_served_from_the_gateway(gateway_factory, sqlite_url) -> None:
    gw = gateway_factory(make_settings(sqlite_url, free_port()))
    http = Browser(gw.url).http
    icon = http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    script = http.get("/console/static/echarts-5.6.0.min.js")
    assert script.status_code == 200 and "Apache" in script.text[:2000] and len(script.content) > 500_000
    assert "Apache License" in http.get("/console/static/echarts-LICENSE.txt").text
    assert http.get("/console/static/console.js").status_code == 200
