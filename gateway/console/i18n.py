"""The console's languages: English (the messages as written) and Simplified Chinese, from the Babel
catalog gateway/console/locale/zh_Hans/LC_MESSAGES/messages.po. The catalog is compiled in memory the
first time it is used (no .mo file to build or to forget). An operator's own choice (operators.locale)
wins; without one, the browser's Accept-Language; English otherwise."""
from __future__ import annotations

import functools
from decimal import Decimal
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import get_currency_precision
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
LOCALES = {"en": "English", "zh_Hans": "简体中文"}
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The catalog of `locale` (English: the messages themselves)."""
    if locale == DEFAULT or locale not in LOCALES:
        return NullTranslations()
    with open(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def from_accept_language(header: str | None) -> str:
    """The first language of the header the console speaks ("zh-CN,zh;q=0.9,en;q=0.8" -> zh_Hans)."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh") and not tag.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")):
            return "zh_Hans"
        if tag.startswith("en") or tag == "*":
            return "en"
    return DEFAULT


def choose(operator_locale: str | None, accept_language: str | None) -> str:
    if operator_locale in LOCALES:
        return operator_locale
    return from_accept_language(accept_language)


def money(amount: int | None, currency: str | None = "CNY") -> str:
    """Minor units as people read them, always with the currency: 500000 CNY fen -> "CNY 5,000.00"."""
    if amount is None:
        return "-"
    currency = currency or "CNY"
    digits = get_currency_precision(currency)
    return f"{currency} {Decimal(int(amount)).scaleb(-digits):,.{digits}f}"
