"""MkDocs hooks: the reference pages generated from the code (gateway/reference.py) are added to the
site when it is built — from the code at hand, with no network and no file written into docs/."""
from __future__ import annotations

from mkdocs.structure.files import File, Files

from gateway.reference import PAGES


def on_files(files: Files, config, **kwargs) -> Files:  # noqa: ANN001, ARG001 - MkDocs' hook signature
    for src_uri, generate in PAGES.items():
        files.append(File.generated(config, src_uri, content=generate()))
    return files
