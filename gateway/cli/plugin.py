"""`paymux plugin new NAME [--dir PATH]`: write a separate, installable channel-plugin package.

The package (templates in gateway/scaffold/package) holds the plugin, its wire module, a simulator
speaking that wire protocol, a statement parser and the conformance kit's harness; as written, it
passes the kit (`pip install -e ./NAME && pytest ./NAME`)."""
from __future__ import annotations

import argparse
import keyword
import re
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
TAKEN = {"gateway", "ledger", "plugins", "migrations", "paymux", "tests", "test"}


def name_problem(name: str) -> str | None:
    """Why NAME cannot name a plugin package, or None."""
    if not NAME.match(name):
        return (f"{name!r} is not a plugin name: use 2 to 31 lower-case letters, digits and _, "
                "starting with a letter (e.g. kiosk)")
    if keyword.iskeyword(name) or name in sys.stdlib_module_names or name in TAKEN:
        return f"{name!r} is not a plugin name: it is taken by Python or paymux; choose another"
    return None


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        path = f"{prefix}{entry.name}"
        found += _files(entry, f"{path}/") if entry.is_dir() else [(path, entry)]
    return found


def write_package(name: str, where: Path) -> Path:
    """Write the package NAME/ into `where` from the templates; its path. The caller checked the name."""
    target = where / name
    fill = {"{{name}}": name, "{{Name}}": class_name(name)}
    target.mkdir(parents=True)
    for relative, template in _files(resources.files("gateway.scaffold") / "package"):
        text = template.read_text(encoding="utf-8")
        for token, value in fill.items():
            relative, text = relative.replace(token, value), text.replace(token, value)
        out = target / relative.removesuffix(".tmpl")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return target


def new(args: argparse.Namespace) -> int:
    problem = name_problem(args.name)
    where = Path(args.dir)
    if problem is None and (where / args.name).exists():
        problem = f"{where / args.name} already exists: choose another name or --dir (nothing was written)"
    if problem is None and where.exists() and not where.is_dir():
        problem = f"--dir {where} is not a directory"
    if problem:
        print(f"paymux: error: {problem}", file=sys.stderr)
        return 2
    target = write_package(args.name, where)
    shown = str(target) if target.is_absolute() else f"./{target}"
    print(f"wrote the {args.name} channel plugin to {shown}/. Next:\n  pip install -e {shown}\n  pytest {shown}")
    return 0
