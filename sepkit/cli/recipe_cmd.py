"""``sepkit recipe show RECIPE [overrides...] [--resolved]``: the merged recipe as YAML."""

from __future__ import annotations


def add_parser(sub, parents) -> None:
    p = sub.add_parser("recipe", parents=parents, help="inspect recipes")
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION", required=True, parser_class=type(p))
    show = rsub.add_parser("show", parents=parents, help="print a recipe after extends and overrides")
    show.add_argument("recipe", help="a recipe file or a bundled recipe name")
    show.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. model.separator.hidden=128")
    show.add_argument(
        "--resolved", action="store_true", help="also validate every component and fill in its default keys"
    )
    show.set_defaults(run=run_show)


def run_show(args) -> int:
    from omegaconf import OmegaConf

    from sepkit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.resolved:
        from sepkit.plugins import get_registry
        from sepkit.recipe import resolve_components

        config = resolve_components(recipe, get_registry())
        print(OmegaConf.to_yaml(config), end="")
    else:
        print(recipe.to_yaml(), end="")
    return 0
