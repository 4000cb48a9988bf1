"""Reference pages of the documentation, generated from the code so they cannot drift from it: the
configuration (the settings dataclasses of gateway/config.py and the comments beside their fields),
the command line (gateway/cli/parser.py's build_parser()) and the HTTP API (the OpenAPI document the
gateway serves at /openapi.json). docs/hooks.py adds them to the site when it is built; each is
Markdown, and each starts with a `generated` marker, so the docs runner does not run its blocks."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
from typing import Any, Iterable

from gateway.api.openapi import openapi_document
from gateway.cli.parser import build_parser
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings

MARKER = "<!-- generated: by gateway/reference.py when the site is built; edit the code it reads, not this page -->"


def _cell(text: Any) -> str:
    """Text for one cell of a Markdown table."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


# ---- configuration ----

def _field_comments(cls: type) -> dict[str, str]:
    """The comment on a field's line, or the comment lines right above it, in the class's source."""
    comments: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^\s+(\w+)\s*:\s*[^=]+?(?:=.*?)?(?:#\s*(?P<comment>.*))?$", line)
        if match and not stripped.startswith(("def ", "@", "return", "raise")):
            comment = " ".join(above + ([match.group("comment")] if match.group("comment") else []))
            comments[match.group(1)] = comment
        above = []
    return comments


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(a table)"
    if isinstance(value, tuple):
        value = list(value)
    if value is None:
        return "not set"
    if isinstance(value, dict) and not value:
        return "empty"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _type(f: dataclasses.Field) -> str:
    return str(f.type).replace("typing.", "")


# What fields the code leaves without a comment are (the same words as the guides use).
_EXPLAINED = {
    "public_url": "how channels and payers reach this gateway: notify and return URLs are made from it",
    "secret_key": "the key that seals merchant secrets, bank accounts and receivers (AES-256-GCM); usually "
                  "`file:PATH`, which `paymux init` creates when missing",
    "max_body_bytes": "a larger request body is a 413",
    "auth_window_seconds": "a signed request's timestamp may be this far off the gateway's clock",
    "idempotency_ttl_seconds": "how long an Idempotency-Key replays its first answer",
    "channel_timeout_seconds": "a channel call with no answer by then is UNKNOWN, never a failure",
    "business_timezone": "the zone of the business day (ledger entries, limits, statements, settlement)",
    "notify_timeout_seconds": "a merchant endpoint must answer 2xx within this",
    "notify_poll_seconds": "how often the notifier looks for events to deliver",
    "query_give_up_seconds": "after this, an open attempt or refund is listed by `paymux exceptions`",
    "janitor_poll_seconds": "how often the janitor looks for work",
    "channel_queries_per_second": "each channel account's query rate (an account's own `queries_per_second` wins)",
    "health_flush_seconds": "how often each process adds what it saw of channel health to the database",
    "sign_in_window_seconds": "the window of `sign_in_max_tries`",
    "recon_carry_days": "a success absent from the statement is `pending_carryover` this many days, then "
                        "`missing_channel`",
    "recon_lookback_days": "how many days back reconciliation reads our side",
    "merchant_settlement_overrides": "one merchant's own T+n",
    "log_json": "log lines as JSON (false: plain text)",
    "settings": "the plugin's own settings: see Configuring channels",
    "enabled": "false: refuses new payments, still takes callbacks and queries",
    "priority": "lower is tried first",
    "weight": "its share among accounts of one priority",
}


def _fields(cls: type, names: dict[str, str] | None = None, skip: Iterable[str] = ()) -> list[list[str]]:
    comments = {k: v for k, v in _EXPLAINED.items() if k in {f.name for f in dataclasses.fields(cls)}}
    comments.update({k: v for k, v in _field_comments(cls).items() if v})
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        key = (names or {}).get(f.name, f.name)
        rows.append([f"`{key}`", f"`{_type(f)}`", _default(f), comments.get(f.name, "")])
    return rows


# Settings fields the TOML spells differently (the rest are top-level keys of the same name).
_SETTINGS_KEYS = {"database_url": "[database] url", "merchant_settlement_days": "[settlement] merchant_days",
                  "merchant_settlement_overrides": "[settlement.merchants] MERCHANT_ID",
                  "merchant_preferences": "[routing.merchant_preferences] MERCHANT_ID",
                  "split_refund_policy": "[splits] refund_policy", "channel_accounts": "[[channel_accounts]]"}
_ENVIRONMENT = [
    ("PAYMUX_CONFIG", "the config file (or `--config PATH`); default `conf/paymux.toml` in the working "
                      "directory, else the embedded one"),
    ("PAYMUX_DATABASE_URL", "overrides `[database] url`"),
    ("PAYMUX_SECRET_KEY", "overrides `secret_key`"),
    ("PAYMUX_PUBLIC_URL", "overrides `public_url`"),
]


def configuration_reference() -> str:
    header = ["key", "type", "default", "what it is"]
    out = [MARKER, "", "# Configuration reference", "",
           "Generated from `gateway/config.py`: every key the gateway's TOML config takes, its type, its default "
           "and the comment the code keeps beside it. Any value may be `env:NAME` (an environment variable) or "
           "`file:PATH` (a file's content, stripped). `conf/paymux.toml` is the embedded default; see "
           "[Configuring channels](../channels.md) for each plugin's `settings`.", "",
           "## Top level", ""]
    out += _table(header, _fields(Settings, _SETTINGS_KEYS, skip=("config_path", "extra")))
    out += ["", "Other top-level tables (`[risk]` and a plugin's own) are handed to the plugins that read them.",
            "", "## `[[channel_accounts]]`", "",
            "One table per channel account: which plugin serves it, whether it takes new payments, its "
            "`[channel_accounts.settings]` (the plugin's), and how the router treats it. Keys of the account "
            "itself come before its sub-tables.", ""]
    out += _table(header, _fields(ChannelAccountConfig, {"enabled": "enabled"}))
    out += ["", "## `[channel_accounts.limits]`", "", *_doc(AccountLimits), ""]
    out += _table(header, _fields(AccountLimits))
    out += ["", "## `[channel_accounts.circuit]`", "", *_doc(CircuitConfig), ""]
    out += _table(header, _fields(CircuitConfig))
    out += ["", "## Environment", ""]
    out += _table(["variable", "what it does"], [[f"`{name}`", text] for name, text in _ENVIRONMENT])
    return "\n".join(out) + "\n"


def _doc(cls: type) -> list[str]:
    return [" ".join(inspect.getdoc(cls).split())] if inspect.getdoc(cls) else []


# ---- command line ----

def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(its words, its help, its parser) for every command that runs, depth first, in the parser's order."""
    found = []

    def walk(p: argparse.ArgumentParser, words: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help or "" for a in action._choices_actions}
                for name, child in action.choices.items():
                    found.append((f"{words} {name}", helps.get(name, ""), child))
                    walk(child, f"{words} {name}")

    walk(parser, parser.prog)
    return found


def _options(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(action.option_strings) or action.metavar or action.dest
        if action.choices and not action.option_strings:
            name = action.dest
        what = action.help or ""
        if action.choices:
            what = f"{what} (one of: {', '.join(map(str, action.choices))})".strip()
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            what = f"{what} (default: {action.default})".strip()
        required = "yes" if action.required else ""
        rows.append([f"`{name}`", required, what])
    return rows


def cli_reference() -> str:
    parser = build_parser()
    out = [MARKER, "", "# Command-line reference", "",
           "Generated from `gateway/cli/parser.py` (`build_parser()`): every `paymux` command, its usage and "
           "its options.", "", "## paymux", "", "```text", parser.format_usage().strip(), "```", ""]
    out += _table(["option", "required", "what it does"], _options(parser))
    if parser.epilog:   # units, exit codes, environment variables: as `paymux --help` ends
        out += ["", "```text", parser.epilog.strip(), "```"]
    for words, help_text, sub in _subcommands(parser):
        has_children = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        out += ["", f"## {words.removeprefix('paymux ')}", ""]
        if help_text:
            out += [help_text[0].upper() + help_text[1:] + ("" if help_text.endswith(".") else "."), ""]
        out += ["```text", " ".join(sub.format_usage().split()).removeprefix("usage: "), "```"]
        rows = _options(sub)
        if rows and not has_children:
            out += [""] + _table(["argument", "required", "what it does"], rows)
    return "\n".join(out) + "\n"


# ---- HTTP API ----

def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(_schema_type(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minLength", "length ≥"), ("maxLength", "length ≤"), ("minimum", "≥"), ("maximum", "≤"),
                       ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for option in schema.get("anyOf", []):
        extra = _constraints(option)
        if extra:
            parts.append(extra)
    return "; ".join(parts)


def _body_schema(part: dict[str, Any]) -> str:
    content = part.get("content", {})
    for media, body in content.items():
        return f"{_schema_type(body.get('schema', {}))} (`{media}`)"
    return ""


def http_api_reference(document: dict[str, Any] | None = None) -> str:
    doc = document if document is not None else openapi_document()
    info = doc.get("info", {})
    out = [MARKER, "", "# HTTP API reference", "",
           f"Generated from the OpenAPI {doc.get('openapi', '')} document the gateway serves at `/openapi.json` "
           f"({info.get('title', '')} {info.get('version', '')}). Signing, idempotency and errors are explained "
           "in [the merchant API](../merchant-api.md).", ""]
    if info.get("description"):
        out += [info["description"], ""]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            out += [f"## `{method.upper()} {path}`", "", op.get("summary", "")]
            if op.get("description"):
                out += ["", op["description"]]
            if op.get("security") == []:
                out += ["", "Not signed."]
            params = op.get("parameters", [])
            if params:
                out += ["", *_table(["parameter", "in", "required", "type", "what it is"],
                                    [[f"`{p['name']}`", p.get("in", ""), "yes" if p.get("required") else "",
                                      _schema_type(p.get("schema", {})), p.get("description", "")] for p in params])]
            if op.get("requestBody"):
                out += ["", f"Body: {_body_schema(op['requestBody'])}"]
            out += ["", *_table(["status", "what it means", "body"],
                                [[code, answer.get("description", ""), _body_schema(answer)]
                                 for code, answer in sorted(op.get("responses", {}).items())]), ""]
    out += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [" ".join(schema["description"].split()), ""]
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            out += _table(["field", "type", "required", "constraints", "what it is"],
                          [[f"`{field}`", _schema_type(s), "yes" if field in required else "", _constraints(s),
                            s.get("description", "")] for field, s in props.items()])
            out.append("")
    return "\n".join(out) + "\n"


PAGES = {
    "reference/configuration.md": configuration_reference,
    "reference/cli.md": cli_reference,
    "reference/http-api.md": http_api_reference,
}
