"""``TableSourceParser`` (``table-parser``): an OFFLINE STAND-IN for OpenSep's LLM source parser.

OpenSep asks an instruction-tuned LLM to list the caption's sources with their audio
properties. Offline, this parser finds every tag of a property table in the caption (longest
tags first, whole words, in order of appearance) and returns the table's detailed description
of each. The table is a YAML mapping ``tag: description`` shipped with the recipe
(``recipes/mini/opensep_properties.yml`` for sepkit-mini's 37 tags); it knows no other sound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from sepkit.errors import SepkitError
from sepkit.source_finding import ParsedSource, SourceParser


def read_property_table(path: str) -> dict[str, str]:
    """{tag: description} from a YAML mapping; SepkitError naming the file if it is not one."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise SepkitError(f"table-parser: property table {path} not found; give 'table: <tag -> description YAML>'")
    try:
        table = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise SepkitError(f"table-parser: {path} is not valid YAML ({exc})") from None
    if not isinstance(table, dict) or not table:
        raise SepkitError(f"table-parser: {path} must be a non-empty mapping of tag: description")
    bad = [k for k, v in table.items() if not isinstance(k, str) or not isinstance(v, str) or not v.strip()]
    if bad:
        raise SepkitError(f"table-parser: {path}: entries {bad[:5]} must map a tag to a non-empty description")
    return {k.strip().lower(): " ".join(v.split()) for k, v in table.items()}


def find_tags(caption: str, tags: list[str]) -> list[str]:
    """Tags occurring in ``caption`` as whole words, in order of appearance; a longer tag wins an overlap."""
    text = " ".join(caption.lower().split())
    taken = [False] * len(text)
    found: list[tuple[int, str]] = []
    for tag in sorted(tags, key=len, reverse=True):
        for match in re.finditer(rf"(?<![\w-]){re.escape(tag)}(?![\w-])", text):
            if not any(taken[match.start() : match.end()]):
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
                found.append((match.start(), tag))
    seen: list[str] = []
    for _, tag in sorted(found):
        if tag not in seen:
            seen.append(tag)
    return seen


class TableSourceParser(SourceParser):
    """caption -> [ParsedSource(tag, table[tag]) for each table tag in the caption]."""

    @dataclass
    class Config:
        table: str = MISSING  # YAML tag -> description (relative paths: beside the recipe)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.table = read_property_table(config.table)

    def parse(self, caption: str) -> list[ParsedSource]:
        return [ParsedSource(tag, self.table[tag]) for tag in find_tags(caption, list(self.table))]
