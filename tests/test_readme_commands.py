"""Every ``sepkit ...`` command in the documentation's shell blocks parses as written (issue 13, item 6).

The README showed ``sepkit separate ... model.text_encoder.text_model_dir=...`` while ``separate``
refused overrides; this test reads the commands out of README.md, docs/ and the benchmark and
recipe READMEs, parses each with the real argument parser and, where a command names a recipe,
loads it with the command's overrides and checks every component key (nothing is built).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sepkit.cli import build_parser, parse_args

REPO = Path(__file__).resolve().parents[1]
DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "recipes").rglob("README.md")),
    *sorted((REPO / "benchmarks").rglob("README.md")),
]
SHELL_LANGUAGES = ("", "bash", "sh", "shell", "console")


def shell_blocks(text: str) -> list[str]:
    """The bodies of fenced code blocks in a shell language."""
    blocks, body, language = [], None, None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if body is None:
                language, body = line.strip().strip("`").strip().lower(), []
            else:
                if language in SHELL_LANGUAGES:
                    blocks.append("\n".join(body))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def sepkit_commands(path: Path) -> list[tuple[str, list[str]]]:
    """(source line, argv after ``sepkit``) for every ``sepkit`` call in the file's shell blocks."""
    found = []
    for block in shell_blocks(path.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                words = list(lexer)
            except ValueError:
                continue
            for end, word in enumerate(words):  # the command ends at a redirection, pipe, '&' or ';'
                if word and all(ch in "();<>|&" for ch in word):
                    words = words[:end]
                    break
            for i, word in enumerate(words):
                if word == "sepkit" or word.endswith("/sepkit"):
                    found.append((line.strip(), words[i + 1 :]))
                    break
    return found


COMMANDS = [(f"{path.relative_to(REPO)}: {line}", argv) for path in DOCS for line, argv in sepkit_commands(path)]


def test_the_readme_has_commands_to_check():
    readme = [c for c in COMMANDS if c[0].startswith("README.md")]
    assert len(readme) >= 15, readme
    assert any("text_model_dir=" in c[0] for c in readme)  # the case the probe found


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[c[0][:90] for c in COMMANDS])
def test_documented_command_parses(where, argv, capsys):
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe, resolve_components

    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except SystemExit:
        pytest.fail(f"{where}\n  does not parse: {capsys.readouterr().err.strip()}")
    recipe = getattr(args, "recipe", None)
    overrides = getattr(args, "overrides", None)
    if isinstance(recipe, str) and isinstance(overrides, list):  # separate, complexity, train, recipe show
        resolve_components(load_recipe(recipe, overrides), get_registry())
