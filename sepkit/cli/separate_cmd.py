"""``sepkit separate INPUT --query Q [--query Q2 ...] [--recipe R] [--ckpt PATH] -o OUT`` (or ``--all``).

INPUT is an audio file or a folder (every audio file in it, batched). Outputs
keep each input's sample rate and channel count and are written atomically.

Where outputs go:
- one input file, one query: OUT is the output file (or a folder to put it in);
- several queries or a folder input: OUT is a folder; each output is named
  ``<input stem>[.<query slug>]<suffix>`` (the slug only with several queries),
  keeping the input folder's sub-folders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sepkit.errors import SepkitError

DEFAULT_RECIPE = "mini/audiosep"


def add_parser(sub, parents) -> None:
    p = sub.add_parser("separate", parents=parents, help="separate sounds described by text from audio files")
    p.add_argument("input", help="an audio file (wav, flac, ogg) or a folder of them")
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


def unique_slugs(queries: list[str]) -> list[str]:
    """One distinct file-name part per query: repeated slugs get "-2", "-3", ..."""
    seen: dict[str, int] = {}
    out = []
    for q in queries:
        s = slug(q)
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] == 1 else f"{s}-{seen[s]}")
    return out


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


def run(args) -> int:
    from sepkit.audio import audio_subtype, list_audio_files, read_audio, write_audio
    from sepkit.pipeline import build_instruction_parser, build_pipeline
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
    recipe = load_recipe(args.recipe)
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
    if args.ckpt is None and recipe.checkpoint_path() is None:
        print(
            f"sepkit: note: recipe {recipe.source} has no trained checkpoint; separating with untrained weights "
            "(the end-to-end path runs, the output is not a real separation)",
            file=sys.stderr,
        )
    pipeline = build_pipeline(recipe, checkpoint=args.ckpt)

    group = max(1, pipeline.settings.batch_size)
    for start in range(0, len(inputs), group):
        paths = inputs[start : start + group]
        loaded = [read_audio(p) for p in paths]
        waves = [w for w, _ in loaded]
        rates = [sr for _, sr in loaded]
        for qi, query in enumerate(queries):
            results = pipeline.separate(waves, rates, query, device=args.device, dtype=args.dtype, progress=True)
            for i, result in enumerate(results):
                target = plans[start + i][qi]
                write_audio(target, result.numpy(), rates[i], subtype=audio_subtype(paths[i]))
                print(target)
    return 0
