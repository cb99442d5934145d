"""A small self-contained HTML page: rows of labelled spectrogram images with audio players."""

from __future__ import annotations

import html
import os
from pathlib import Path

from sepkit.atomic import atomic_path


def write_page(path: str | Path, title: str, sections: list[tuple[str, list[tuple[str, str, str]]]], notes=()) -> None:
    """``sections``: [(heading, [(label, png path, wav path), ...])]; paths are made relative to the page."""
    path = Path(path)
    base = path.parent

    def rel(p: str) -> str:
        return html.escape(Path(os.path.relpath(p, base)).as_posix())

    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;background:#fafafa}"
        "figure{display:inline-block;margin:0 1em 1.5em 0}img{display:block;height:180px;border:1px solid #ccc}"
        "figcaption{font-size:14px;margin:.3em 0}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><div>")
        for label, png, wav in items:
            parts.append(
                f"<figure><figcaption>{html.escape(label)}</figcaption>"
                f"<img src='{rel(png)}' alt='{html.escape(label)}'><audio controls src='{rel(wav)}'></audio></figure>"
            )
        parts.append("</div>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(parts) + "\n", encoding="utf-8")
