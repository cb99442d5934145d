"""``sepkit data ...``: build sepkit-mini, write mixture sets, import corpora, write shards.

    sepkit data mini --out DIR [--seed N] [--clips-per-class N] [--seconds S] [--soundfont SF2 ...]
    sepkit data mix --manifest M --protocol P --pairs N --seed S --out DIR [--render]
    sepkit data testset NAME --out DIR [--corpus KEY=MANIFEST ...] [--soundfont SF2] | sepkit data testset --list
    sepkit data import CORPUS --root DIR --out DIR [--on-missing skip|fail]
    sepkit data shard --manifest M --out DIR [--shard-size N]
    sepkit data cache RECIPE --manifest M [overrides ...] [--device cpu|cuda]
"""

from __future__ import annotations

import json


def add_parser(sub, parents) -> None:
    p = sub.add_parser("data", parents=parents, help="build, mix, import and shard datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=type(p))

    mini = dsub.add_parser("mini", parents=parents, help="build the sepkit-mini real-audio corpus offline")
    mini.add_argument("--out", required=True, help="output folder")
    mini.add_argument("--seed", type=int, default=0)
    mini.add_argument("--clips-per-class", type=int, default=None, help="clips per class over all splits")
    mini.add_argument("--seconds", type=float, default=4.0, help="clip length (the papers use 10 s)")
    mini.add_argument("--soundfont", action="append", default=[], metavar="SF2",
                      help="an extra General MIDI soundfont (besides TimGM6mb.sf2) that instrument clips may be "
                           "rendered from; repeatable (docs/testsets.md: which ones, and the one held out)")
    mini.set_defaults(run=run_mini)

    mix = dsub.add_parser("mix", parents=parents, help="write a frozen mixture manifest with a paper's protocol")
    mix.add_argument("--manifest", required=True, help="clip manifest (JSONL)")
    mix.add_argument("--protocol", required=True,
                     help="hsm_tss, hybrid_sep, dcase, music_zeroshot, multilevel or mix_and_separate")
    mix.add_argument("--pairs", type=int, required=True, help="number of mixtures")
    mix.add_argument("--seed", type=int, default=0)
    mix.add_argument("--out", required=True, help="output folder")
    mix.add_argument("--seconds", type=float, default=None, help="mixture length (default: the protocol's)")
    mix.add_argument("--synonyms", default=None, help="YAML file extending the tag synonym table")
    mix.add_argument("--render", action="store_true", help="also write mixture and target wavs")
    mix.set_defaults(run=run_mix)

    testset = dsub.add_parser("testset", parents=parents, help="write a paper's frozen test set or a sepkit-mini one")
    testset.add_argument("name", nargs="?", help="a test set name (--list shows them)")
    testset.add_argument("--out", help="output folder (mini sets: data/mixes, where benchmark --testset looks)")
    testset.add_argument("--corpus", action="append", default=[], metavar="KEY=MANIFEST",
                         help="a clip manifest the set reads, e.g. audiocaps=DIR/audiocaps_test.jsonl; repeatable")
    testset.add_argument("--soundfont", metavar="SF2",
                         help="the held-out soundfont a set renders its instrument clips from (mini-unseen)")
    testset.add_argument("--list", action="store_true", help="print the test sets and what each needs")
    testset.set_defaults(run=run_testset)

    imp = dsub.add_parser("import", parents=parents, help="write a clip manifest from a corpus's official metadata")
    imp.add_argument("corpus", help="audiocaps, clotho, fsd50k, esc50, wavcaps, audioset or music")
    imp.add_argument("--root", required=True, help="the corpus folder (metadata and audio)")
    imp.add_argument("--out", required=True, help="output folder for the manifests")
    imp.add_argument("--on-missing", choices=("skip", "fail"), default="skip")
    imp.set_defaults(run=run_import)

    shard = dsub.add_parser("shard", parents=parents, help="write webdataset tar shards of a clip manifest")
    shard.add_argument("--manifest", required=True)
    shard.add_argument("--out", required=True)
    shard.add_argument("--shard-size", type=int, default=1000, help="clips per shard")
    shard.set_defaults(run=run_shard)

    cache = dsub.add_parser(
        "cache", parents=parents,
        help="precompute a training recipe's frozen features for a manifest (sepkit train reads them)",
    )
    cache.add_argument("recipe", help="a training recipe (file or bundled name)")
    cache.add_argument("overrides", nargs="*", help="dotlist overrides, as for sepkit train")
    cache.add_argument("--manifest", action="append", default=None,
                       help="clip or mixture manifest (repeatable; default: every manifest the recipe's data: names)")
    cache.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides train.device")
    cache.set_defaults(run=run_cache)

def _print(summary) -> None:
    print(json.dumps(summary, indent=2, default=str))


def run_mini(args) -> int:
    from sepkit.data.mini.build import build_mini

    summary = build_mini(
        args.out, seed=args.seed, clips_per_class=args.clips_per_class, seconds=args.seconds, soundfonts=args.soundfont
    )
    _print(summary)
    return 0


def run_mix(args) -> int:
    from sepkit.data.mixing import write_mixtures

    summary = write_mixtures(
        args.manifest,
        args.protocol,
        pairs=args.pairs,
        seed=args.seed,
        out=args.out,
        seconds=args.seconds,
        synonyms=args.synonyms,
        render=args.render,
    )
    _print(summary)
    return 0


def _corpus_options(values: list[str]) -> dict[str, str]:
    from sepkit.errors import SepkitError

    result = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise SepkitError(f"--corpus {value!r}: give KEY=MANIFEST, e.g. audiocaps=DIR/audiocaps_test.jsonl")
        if key in result:
            raise SepkitError(f"--corpus {key} is given twice ({result[key]} and {path}); give each corpus once")
        result[key] = path
    return result


def run_testset(args) -> int:
    from sepkit.data.testsets import build_testset, format_table, get_testset
    from sepkit.errors import SepkitError

    if args.list:
        print(format_table())
        return 0
    if not args.name or not args.out:
        raise SepkitError("give a test set name and --out DIR (sepkit data testset --list shows the names)")
    _print(build_testset(get_testset(args.name), args.out, _corpus_options(args.corpus), soundfont=args.soundfont))
    return 0


def run_import(args) -> int:
    from sepkit.data.importers import import_corpus

    _print(import_corpus(args.corpus, args.root, args.out, on_missing=args.on_missing))
    return 0


def run_shard(args) -> int:
    from sepkit.data.shards import write_shards

    _print(write_shards(args.manifest, args.out, shard_size=args.shard_size))
    return 0


def run_cache(args) -> int:
    import dataclasses
    from pathlib import Path

    from sepkit.device import resolve_device, resolve_precision
    from sepkit.errors import SepkitError
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_data_config, load_train_config
    from sepkit.train.feature_cache import data_manifests
    from sepkit.train.system import build_system

    recipe = load_recipe(args.recipe, list(args.overrides))
    train, data = load_train_config(recipe), load_data_config(recipe)
    if args.manifest:
        manifests = [Path(m).resolve() for m in args.manifest]
    else:
        manifests = data_manifests(data, recipe.base_dir)
    if not manifests:
        raise SepkitError(f"{recipe.source}: no manifest to cache; give --manifest M or a recipe with data.train")
    for manifest in manifests:
        if not manifest.is_file():
            raise SepkitError(f"manifest {manifest} does not exist; give an existing clip or mixture manifest")
    device = resolve_device(args.device or train.device)
    train = dataclasses.replace(train, precision=resolve_precision(train.precision, device))  # as training resolves it
    system = build_system(recipe, train).to(device)
    summary = {str(m): system.cache_features(m, data, device, progress=True) for m in manifests}
    _print(summary)
    return 0
