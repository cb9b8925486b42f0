"""``tfface recipe list`` and ``tfface recipe show NAME [--set key=value ...]``.

``show`` prints the recipe a run will use, as JSON, with every default filled in: the recipe's
own values, the schema's defaults (``tfface.recipe.Recipe``) and each component's own defaults
(read from the registry). ``tfface train`` records the same in ``WORKDIR/recipe.json`` and
``summary.json``. ``show --keys`` lists every key with its type, default and meaning.
"""
import json
import sys


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the bundled recipes, one per line with its description")
    show = sub.add_parser("show", help="one recipe, fully resolved, as JSON")
    show.add_argument("recipe", nargs="?", help="recipe name, or a .py/.json recipe file")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a value as 'tfface train --set' does")
    show.add_argument("--keys", action="store_true",
                      help="list every recipe key with its type, default and meaning instead")


def run(args):
    from tfface.recipe import RecipeError, describe, list_recipes, load_recipe

    if args.action == "list":
        names = list_recipes()
        width = max(len(n) for n in names)
        for name in names:
            print(f"{name:<{width}}  {load_recipe(name).description}")
        return 0
    if args.keys:
        for key, kind, default, doc in describe():
            print(f"{key}: {kind}, default {json.dumps(default)}\n    {doc}")
        return 0
    if not args.recipe:
        print("tfface recipe show: name a recipe (tfface recipe list), or pass --keys", file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe, args.overrides).resolved()
    except RecipeError as err:
        print(f"tfface recipe show: {err}", file=sys.stderr)
        return 2
    print(json.dumps(recipe.to_dict(), indent=2))
    return 0
