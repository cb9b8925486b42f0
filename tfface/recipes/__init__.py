"""The bundled recipes: one module per paper setting, each holding one ``RECIPE``.

Every paper family has one base in ``_bases.py`` (the setting of the paper's experimental
section, with the choices the paper leaves open); a recipe module states only what differs from
its base, and its docstring cites the paper, section and table. ``tfface recipe list`` lists them,
``tfface recipe show NAME`` prints one fully resolved, and ``tfface.recipe.load_recipe(NAME)``
loads one. The schema (keys, types, defaults, one line of documentation each) is
``tfface.recipe.Recipe``.
"""
