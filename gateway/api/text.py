"""Text paymux refuses at the door: NUL (PostgreSQL cannot store it), lone surrogates (no page or
column can encode them) and bytes that are not UTF-8. One check for JSON bodies (after the signature),
one for paths, query strings and form bodies (before any handler), each a 400 `invalid_string` naming
where the text was."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from gateway.errors import PaymuxError, invalid_request

_BAD = re.compile("[\x00\ud800-\udfff]")


def invalid_string(param: str | None, where: str) -> PaymuxError:
    return invalid_request("invalid_string", f"{where} holds a NUL character, a lone surrogate or bytes that are not "
                                             "UTF-8", param)


def check_json(value: Any) -> None:
    """Every key and string value of a parsed JSON document, however deep (no recursion: json's own
    depth limit is the only one)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _BAD.search(item):
                raise invalid_string(path or None, path or "The request body")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _BAD.search(key):
                    raise invalid_string(path or None, f"A key of {path or 'the request body'}")
                stack.append((child, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item))


def _decoded(raw: bytes, plus_is_space: bool) -> str | None:
    """Percent-decoded UTF-8 without NUL or surrogates, or None."""
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text   # strict UTF-8 never yields a surrogate


def check_pairs(raw: bytes, where: str) -> None:
    """A query string or an application/x-www-form-urlencoded body: each name and value."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        key = _decoded(name, True)
        if key is None:
            raise invalid_string(where, f"A parameter name in the {where}")
        if _decoded(value, True) is None:
            raise invalid_string(key, key)


def check_target(scope: dict[str, Any]) -> None:
    """The request's path (as sent, before the server decoded it) and its query string."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        if _decoded(raw_path, False) is None:
            raise invalid_string("path", "The path")
    elif _BAD.search(scope["path"]):
        raise invalid_string("path", "The path")
    query = scope.get("query_string", b"")
    if query:
        check_pairs(query, "query")
