"""``sepkit separate INPUT --query Q [--query Q2 ...] [--recipe R] [--ckpt PATH] -o OUT`` (or ``--all``).

INPUT is an audio file or a folder (every audio file in it, batched). Outputs
keep each input's sample rate and channel count and are written atomically.

Where outputs go:
- one input file, one query: OUT is the output file (or a folder to put it in);
- several queries or a folder input: OUT is a folder; each output is named
  ``<input stem>[.<query slug>]<suffix>`` (the slug only with several queries),
  keeping the input folder's sub-folders.

Before any model is loaded, every input is read and checked, every planned output is
compared with every input (a run never overwrites its own input) and with the other
outputs, and every output location is checked for writability.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from sepkit.api import DEFAULT_RECIPE
from sepkit.errors import SepkitError


def add_parser(sub, parents) -> None:
    p = sub.add_parser("separate", parents=parents, help="separate sounds described by text from audio files")
    p.add_argument("input", help="an audio file (wav, flac, ogg) or a folder of them")
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. model.separator.hidden=128")
    p.add_argument(
        "--query", "-q", action="append", help="instruction, e.g. 'extract the violin' (repeatable; or --all)"
    )
    p.add_argument(
        "--all", action="store_true", dest="all_sources",
        help="find every source (a recipe with a captioner and source parser, e.g. mini/opensep), separate each, "
        "write one file per source, the residual and sources.json into the -o folder",
    )
    p.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe file or bundled name (default: {DEFAULT_RECIPE})")
    p.add_argument("--ckpt", help="checkpoint to load (default: the recipe's own 'checkpoint:')")
    p.add_argument("-o", "--output", required=True, help="output file, or folder (several queries / folder input)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides the recipe's inference.device")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="autocast dtype (recipe's by default)")
    p.add_argument("--batch-size", type=int, help="chunks per forward pass (recipe's inference.batch_size)")
    p.set_defaults(run=run)


def slug(text: str) -> str:
    """'Extract the violin!' -> 'extract-the-violin'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "query"


def _writable_suffix(suffix: str) -> str:
    """The input's suffix if soundfile can write it, else ".wav"."""
    from sepkit.audio import output_format

    try:
        output_format(f"x{suffix}")
        return suffix
    except SepkitError:
        return ".wav"


def unique_slugs(queries: list[str], reserved: tuple[str, ...] = ()) -> list[str]:
    """One distinct file-name part per query: a slug already taken gets "-2", "-3", ... until it is free.

    ['extract the violin', 'extract the violin', 'extract the violin 2'] ->
    ['extract-the-violin', 'extract-the-violin-2', 'extract-the-violin-2-2'].
    """
    taken: set[str] = set(reserved)
    out = []
    for q in queries:
        base = candidate = slug(q)
        number = 2
        while candidate in taken:
            candidate = f"{base}-{number}"
            number += 1
        taken.add(candidate)
        out.append(candidate)
    return out


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, so hard links and other spellings of one file compare equal."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_outputs_spare_inputs(inputs: list[Path], plans: list[list[Path]], output_arg: str) -> None:
    """Raise if a planned output is one of the inputs (by resolved path or inode) or two outputs coincide.

    Called before the model loads, so a clash writes nothing.
    """
    by_path = {Path(os.path.realpath(p)): p for p in inputs}
    by_inode = {ident: p for p in inputs if (ident := _identity(p)) is not None}
    seen: dict[Path, Path] = {}
    for target in (t for row in plans for t in row):
        resolved = Path(os.path.realpath(target))
        source = by_path.get(resolved) or by_inode.get(_identity(target) or (-1, -1))
        if source is not None:
            raise SepkitError(
                f"-o {output_arg!r} would write {target} over the input {source}; sepkit never overwrites its "
                "input: give another output file or folder (e.g. -o separated/)"
            )
        if resolved in seen:
            raise SepkitError(
                f"two results would be written to {target} (inputs {seen[resolved]} and another with the same "
                "name); give a folder of inputs whose names differ, or separate them one by one"
            )
        seen[resolved] = target


def refuse_input_overwrite(target: Path, inputs: list[Path]) -> None:
    """Last guard before a write whose name was not known in advance (``--all``): never replace an input."""
    check_outputs_spare_inputs(inputs, [[target]], str(target))


def check_output_locations(plans: list[list[Path]]) -> None:
    """Every planned output can be written (its folder exists or can be made, and is writable)."""
    from sepkit.atomic import check_writable

    checked: set[Path] = set()
    for target in (t for row in plans for t in row):
        if target.parent in checked and not target.is_dir():
            continue
        check_writable(target)
        checked.add(target.parent)


def plan_outputs(inputs: list[Path], root: Path | None, queries: list[str], output: Path) -> list[list[Path]]:
    """outputs[i][q] is where input i's result for query q goes."""
    from sepkit.audio import output_format

    folder_mode = root is not None or len(queries) > 1 or output.is_dir() or not output.suffix
    if not folder_mode:
        output_format(output)
        return [[output]]
    if output.exists() and not output.is_dir():
        raise SepkitError(f"-o {output} is a file, but several outputs need a folder; give a folder path")
    plans = []
    for path in inputs:
        rel = path.relative_to(root).with_suffix("") if root is not None else Path(path.stem)
        suffix = _writable_suffix(path.suffix)
        if len(queries) == 1:
            plans.append([output / rel.parent / f"{rel.name}{suffix}"])
        else:
            plans.append([output / rel.parent / f"{rel.name}.{s}{suffix}" for s in unique_slugs(queries)])
    return plans


def check_output_argument(output: str) -> None:
    """``-o ""`` (or only spaces) is a usage error, not "the current folder"."""
    if not output or not output.strip():
        raise SepkitError("-o is empty; give an output file (-o out.wav) or folder (-o out/)")


def run(args) -> int:
    from sepkit.api import load
    from sepkit.audio import audio_subtype, list_audio_files, read_audio, write_audio
    from sepkit.pipeline import build_instruction_parser
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe

    if args.all_sources:
        from sepkit.cli.separate_all import run_all

        return run_all(args)
    if not args.query:
        raise SepkitError("say what to separate: give --query (e.g. -q 'extract the violin'), or --all")
    queries = list(args.query)
    for q in queries:
        if not q or not q.strip():
            from sepkit.instructions import ACCEPTED_FORMS

            raise SepkitError(f"--query is empty; say what to separate. Accepted forms: {ACCEPTED_FORMS}")
    check_output_argument(args.output)
    recipe = load_recipe(args.recipe, args.overrides)
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise SepkitError("--batch-size must be at least 1")
        recipe.inference.batch_size = args.batch_size
    parser = build_instruction_parser(recipe, get_registry())
    for q in queries:
        parser.parse(q)
    source = Path(args.input)
    inputs, root = (list_audio_files(source), source) if source.is_dir() else ([source], None)
    for path in inputs:  # every input is checked before a model is loaded or an output written
        read_audio(path)
    plans = plan_outputs(inputs, root, queries, Path(args.output))
    check_outputs_spare_inputs(inputs, plans, args.output)
    check_output_locations(plans)
    system = load(recipe, checkpoint=args.ckpt, device=args.device, dtype=args.dtype)  # the Python API's object
    if not system.trained:
        print(
            f"sepkit: note: recipe {recipe.source} has no trained checkpoint; separating with untrained weights "
            "(the end-to-end path runs, the output is not a real separation)",
            file=sys.stderr,
        )

    group = max(1, system.pipeline.settings.batch_size)
    for start in range(0, len(inputs), group):
        paths = inputs[start : start + group]
        loaded = [read_audio(p) for p in paths]
        waves = [w for w, _ in loaded]
        rates = [sr for _, sr in loaded]
        for qi, query in enumerate(queries):
            results = system.separate_each(waves, rates, query, progress=True)
            for i, result in enumerate(results):
                target = plans[start + i][qi]
                write_audio(target, result.numpy(), rates[i], subtype=audio_subtype(paths[i]))
                print(target)
    return 0
