"""``sepkit separate --all INPUT -o DIR``: find every source of each input, separate each, keep the residual.

For a recipe that can enumerate sources (a captioner and a source parser in its ``eval:``
section, e.g. ``recipes/mini/opensep.yaml``), each input ``x.wav`` gives a folder::

    DIR/<input stem>/<source name slug>.wav   one per source found (the source's detailed description is the query)
    DIR/<input stem>/residual.wav             the input minus every separated source
    DIR/<input stem>/sources.json             {"input", "caption", "sources": [{"name", "description", "file"}],
                                              "residual", "recipe"}

A folder input keeps its sub-folders under DIR. Every file is written atomically and keeps the
input's sample rate and channel count. Descriptions are passed to the separator verbatim (not
through the recipe's instruction parser, which would split "short, loud barks" at the commas).
Enumeration is ``sepkit.source_finding`` (captioner -> caption -> source parser, both built from
the registry by their kinds); a recipe without those sections, or naming components no installed
plugin provides, is a bad-input error (exit 2).

Wiring in ``separate_cmd.py`` (``--query`` becomes optional; ``--all`` and ``--query`` exclude each other)::

    p.add_argument("--all", action="store_true", dest="all_sources", help="find and separate every source ...")
    # at the top of run(args):
    if args.all_sources:
        from sepkit.cli.separate_all import run_all
        return run_all(args)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sepkit.errors import SepkitError
from sepkit.instructions import Instruction, InstructionParser


class VerbatimExtract(InstructionParser):
    """Every text is one extraction of itself: the detailed descriptions must not be split."""

    def parse(self, text: str) -> list[Instruction]:
        return [Instruction("extract", " ".join(text.split()))]


def unique_names(names: list[str]) -> list[str]:
    """File stems for the sources: slugs, "residual"/"sources" avoided, repeats numbered until free."""
    from sepkit.cli.separate_cmd import unique_slugs

    return unique_slugs(names, reserved=("residual", "sources"))


def write_json(path: Path, payload: dict) -> None:
    from sepkit.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


def run_all(args) -> int:
    import numpy as np
    import torch

    from sepkit.atomic import check_writable
    from sepkit.audio import audio_subtype, list_audio_files, read_audio, write_audio
    from sepkit.cli.separate_cmd import _writable_suffix, check_output_argument, refuse_input_overwrite
    from sepkit.pipeline import build_pipeline
    from sepkit.plugins import get_registry
    from sepkit.recipe import load_recipe
    from sepkit.source_finding import build_source_finder, can_enumerate

    if getattr(args, "query", None):
        raise SepkitError("--all finds the sources itself; give either --all or --query, not both")
    check_output_argument(args.output)
    recipe = load_recipe(args.recipe, getattr(args, "overrides", []))
    if getattr(args, "batch_size", None) is not None:
        if args.batch_size < 1:
            raise SepkitError("--batch-size must be at least 1")
        recipe.inference.batch_size = args.batch_size
    if not can_enumerate(recipe):
        raise SepkitError(
            f"recipe {recipe.source} cannot enumerate sources (no eval.captioner / eval.source_parser); "
            "use an OpenSep recipe (mini/opensep) or give queries with -q"
        )
    source = Path(args.input)
    inputs, root = (list_audio_files(source), source) if source.is_dir() else ([source], None)
    for path in inputs:  # every input is checked before a model is loaded or an output written
        read_audio(path)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise SepkitError(f"-o {output} is a file; --all writes a folder per input, give a folder path")
    for path in inputs:  # the folders the sources go to can be written, before any model loads
        rel = path.relative_to(root).with_suffix("") if root is not None else Path(path.stem)
        check_writable(output / rel / "sources.json")
    finder = build_source_finder(recipe, get_registry())
    pipeline = build_pipeline(recipe, checkpoint=getattr(args, "ckpt", None))
    pipeline.instruction_parser = VerbatimExtract()
    for path in inputs:
        wave, rate = read_audio(path)
        rel = path.relative_to(root).with_suffix("") if root is not None else Path(path.stem)
        folder = output / rel
        suffix, subtype = _writable_suffix(path.suffix), audio_subtype(path)
        report = finder.find(torch.from_numpy(wave), rate)
        names = unique_names([s.name for s in report.sources])
        residual = wave.astype(np.float64)
        entries = []
        for src, name in zip(report.sources, names):
            result = pipeline.separate([wave], [rate], src.description, device=args.device, dtype=args.dtype)[0]
            target = folder / f"{name}{suffix}"
            refuse_input_overwrite(target, inputs)
            write_audio(target, result.numpy(), rate, subtype=subtype)
            residual = residual - result.numpy()
            entries.append({"name": src.name, "description": src.description, "file": target.name})
            print(target)
        residual_path = folder / f"residual{suffix}"
        refuse_input_overwrite(residual_path, inputs)
        write_audio(residual_path, residual.astype(np.float32), rate, subtype=subtype)
        print(residual_path)
        payload = {
            "input": str(path),
            "caption": report.caption,
            "sources": entries,
            "residual": residual_path.name,
            "recipe": recipe.source,
        }
        write_json(folder / "sources.json", payload)
        if not entries:
            print(f"sepkit: note: no source found in {path} (caption {report.caption!r})", file=sys.stderr)
    return 0
