"""tfface.registry on a throw-away kind ("widget"): registration, names and aliases, meta,
build with injected arguments, argument checks and their messages, resolved_args, Component.

The expected values are written out here; nothing is derived from the registry under test.
"""
import os
import subprocess
import sys

import pytest

from tfface import registry
from tfface.registry import Component, RegistryError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def widget(monkeypatch):
    """A fresh kind with no provider modules, removed after the test."""
    monkeypatch.setitem(registry.PROVIDERS, "widget", ())
    monkeypatch.setitem(registry._REGISTRY, "widget", {})
    monkeypatch.setitem(registry._ALIASES, "widget", {})
    return "widget"


class Gear:
    """A toothed wheel.

    More text that is not the summary line.
    """

    def __init__(self, teeth, size=2.0, shape="round", tool=None, name=None, **kwargs):
        if teeth < 1:
            raise ValueError(f"Gear: teeth must be >= 1, got {teeth}")
        self.teeth, self.size, self.shape, self.tool, self.name = teeth, size, shape, tool, name
        self.kwargs = kwargs


class Axle:
    def __init__(self, length=1.0, marker=object()):
        self.length = length


def test_register_names_aliases_and_meta(widget):
    registry.register(widget, inject=("teeth",), aliases=("cog",), ratio=3, unit="mm")(Gear)
    registry.register(widget, "rod")(Axle)

    @registry.register(widget)
    def BigWheel(radius=1.0):  # noqa: N802 (the name is what is tested)
        return radius

    # Default names are the snake_case of the class or function name, in registration order.
    assert registry.names(widget) == ["gear", "rod", "big_wheel"]
    entry = registry.entry(widget, "gear")
    assert (entry.kind, entry.name, entry.target) == ("widget", "gear", Gear)
    assert entry.inject == ("teeth",)
    # Aliases: the given ones, then the class name; a function gets none.
    assert entry.aliases == ("cog", "Gear")
    assert registry.entry(widget, "cog") is entry and registry.entry(widget, "Gear") is entry
    assert registry.entry(widget, "big_wheel").aliases == ()
    assert registry.entry(widget, "rod").aliases == ("Axle",)
    assert registry.get(widget, "Axle") is Axle
    assert dict(entry.meta) == {"ratio": 3, "unit": "mm"}
    assert dict(registry.entry(widget, "rod").meta) == {}
    with pytest.raises(TypeError):
        entry.meta["ratio"] = 4  # read-only
    assert entry.doc == "A toothed wheel."
    assert registry.entry(widget, "rod").doc == ""


def test_duplicate_name_is_an_error_but_reregistering_the_same_target_is_not(widget):
    registry.register(widget, "gear", inject=("teeth",))(Gear)
    registry.register(widget, "gear", inject=("teeth",))(Gear)  # a module imported twice
    with pytest.raises(RegistryError, match=r"widget 'gear' is already registered \(by .*Gear\)"):
        registry.register(widget, "gear")(Axle)
    assert registry.names(widget) == ["gear"]


def test_unknown_kind_and_unknown_name(widget):
    with pytest.raises(RegistryError, match=r"unknown component kind 'gadget'; kinds: backbone, head"):
        registry.register("gadget")(Gear)
    with pytest.raises(RegistryError, match="unknown component kind 'gadget'"):
        registry.names("gadget")
    registry.register(widget, inject=("teeth",))(Gear)
    registry.register(widget, "rod")(Axle)
    with pytest.raises(RegistryError, match=r"^parts\.drive: unknown widget 'belt'; known: gear, rod$"):
        registry.build(widget, Component("belt"), key="parts.drive")
    with pytest.raises(RegistryError, match=r"^unknown widget 'belt'; known: gear, rod$"):
        registry.entry(widget, "belt")


def test_build_with_injected_arguments(widget):
    registry.register(widget, inject=("teeth",))(Gear)
    gear = registry.build(widget, Component("gear", {"size": 5.0}), teeth=12)
    assert (gear.teeth, gear.size, gear.shape, gear.tool) == (12, 5.0, "round", None)
    # a flat dict, as recipes and JSON write components, and a plain name
    gear = registry.build(widget, {"name": "gear", "shape": "square"}, teeth=3)
    assert (gear.teeth, gear.size, gear.shape) == (3, 2.0, "square")
    assert registry.build(widget, "gear", teeth=7).teeth == 7
    # Keras base arguments (BASE_KWARGS) pass a class's check and reach its **kwargs.
    gear = registry.build(widget, Component("gear", {"trainable": False}), teeth=1)
    assert gear.kwargs == {"trainable": False}


def test_injection_refusals(widget):
    registry.register(widget, inject=("teeth",))(Gear)
    registry.register(widget, "rod")(Axle)
    # a value the entry did not declare
    with pytest.raises(RegistryError, match=r"^rod: widget 'rod' does not take teeth \(declared: none\)$"):
        registry.build(widget, Component("rod"), key="rod", teeth=3)
    with pytest.raises(RegistryError, match=r"widget 'gear' does not take colour \(declared: teeth\)"):
        registry.build(widget, Component("gear"), teeth=3, colour="red")
    # a declared value the builder forgot
    with pytest.raises(RegistryError, match=r"^g: widget 'gear' needs teeth from the builder$"):
        registry.build(widget, Component("gear"), key="g")
    # a recipe setting what the builder provides
    with pytest.raises(RegistryError, match=r"^g\.teeth: set by the builder for widget 'gear', not in a recipe$"):
        registry.build(widget, Component("gear", {"teeth": 4}), key="g", teeth=3)


def test_argument_checks_name_the_dotted_key(widget):
    registry.register(widget, inject=("teeth",))(Gear)
    registry.register(widget, "rod")(Axle)

    @registry.register(widget, "anything")
    def anything(**options):
        return options

    # a class's **kwargs (a Keras base) do not make it take anything
    with pytest.raises(
        RegistryError,
        match=r"^parts\.gear\.szie: widget 'gear' has no argument 'szie'; valid: size, shape, tool, name$",
    ):
        registry.build(widget, Component("gear", {"szie": 1.0}), key="parts.gear", teeth=3)
    with pytest.raises(RegistryError, match=r"^widget\.len: widget 'rod' has no argument 'len'; valid: length, marker$"):
        registry.check_args(widget, Component("rod", {"len": 1.0}))
    # a function's **kwargs do
    assert registry.build(widget, Component("anything", {"x": 1})) == {"x": 1}
    # a required argument that is not injected
    registry.register(widget, "bare")(Gear)
    with pytest.raises(RegistryError, match=r"^b: widget 'bare' needs teeth$"):
        registry.check_args(widget, Component("bare"), key="b")
    # the component's own error, prefixed with the key
    with pytest.raises(RegistryError, match=r"^g: widget 'gear': Gear: teeth must be >= 1, got 0$"):
        registry.build(widget, Component("gear"), key="g", teeth=0)


def test_resolved_args(widget):
    registry.register(widget, inject=("teeth",))(Gear)
    registry.register(widget, "rod")(Axle)
    resolved = registry.resolved_args(widget, Component("gear", {"shape": "square"}))
    # every plain default filled in, in signature order; injected teeth left out, and Keras'
    # object "name" too (in the flat form "name" is the component's)
    args = dict(resolved.args)
    assert resolved.name == "gear"
    assert args == {"size": 2.0, "shape": "square", "tool": None}
    assert list(args) == ["size", "shape", "tool"]
    # a default that is not plain data (an object) is left out
    assert registry.resolved_args(widget, "rod") == Component("rod", {"length": 1.0})
    # alias in, registered name out
    registry.register(widget, "wheel", aliases=("w",))(Axle)
    assert registry.resolved_args(widget, {"name": "w", "length": 3.0}) == Component("wheel", {"length": 3.0})


def test_component_value():
    c = Component.from_dict({"name": "arcface", "margin": 0.5})
    assert c == Component("arcface", {"margin": 0.5})
    assert hash(c) == hash(Component("arcface", {"margin": 0.5}))
    assert c.to_dict() == {"name": "arcface", "margin": 0.5}
    assert Component.from_dict("arcface") == Component("arcface")
    assert Component.from_dict(c) is c
    assert c.with_args(scale=32.0) == Component("arcface", {"margin": 0.5, "scale": 32.0})
    assert c.args == {"margin": 0.5}  # with_args made a copy
    with pytest.raises(TypeError):
        c.args["margin"] = 0.1  # frozen
    with pytest.raises(RegistryError, match="a component name is a non-empty string"):
        Component("")
    with pytest.raises(RegistryError, match=r"^head: expected a component \{'name': \.\.\., <args>\}, got \{'margin': 0\.5\}$"):
        Component.from_dict({"margin": 0.5}, key="head")
    nested = Component("hard_mining", {"base": Component("focal", {"gamma": 1.0})})
    assert nested.to_dict() == {"name": "hard_mining", "base": {"name": "focal", "gamma": 1.0}}
    assert repr(c) == "Component('arcface', margin=0.5)"


def test_the_resolved_flat_form_keeps_the_component_name(widget):
    registry.register(widget, inject=("teeth",))(Gear)
    resolved = registry.resolved_args(widget, Component("gear", {"size": 3.0}))
    assert Component.from_dict(resolved.to_dict()).name == "gear"
    with pytest.raises(RegistryError, match="'name' is the component's registered name"):
        Component("gear", {"name": "other"})


def test_importing_the_registry_loads_nothing():
    code = (
        "import sys, tfface.registry as r; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'loaded TF'; "
        "assert not any(r._REGISTRY.values()), 'registered something on import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
