"""One registry for every pluggable kind of component.

A component is a class or a builder function registered under a *kind* and a *name*::

    from tfface import registry

    @registry.register("head", inject=("num_classes",))
    class ArcFace(MarginHead): ...                       # name "arc_face" unless given:

    @registry.register("head", "arcface", inject=("num_classes",))

and built from a :class:`Component` (a name and its arguments, as a recipe holds it)::

    head = registry.build("head", Component("arcface", {"margin": 0.5}), num_classes=1000)

``inject`` names the arguments the *builder* provides (``num_classes`` of a head, the
``input_shape`` of a backbone, the shared ``centres`` of a centre loss, the ``learning_rate`` of an
optimizer): a recipe never sets them, and :func:`build` refuses a provided value the entry did
not declare. Every other argument of a component comes from ``Component.args`` and is checked
against the registered signature before anything is constructed, so a misspelt ``head.margn``
fails naming the dotted key and the valid arguments.

Kinds are filled lazily: asking for the names of a kind imports the modules that register it
(``PROVIDERS``), so importing this module has no side effect and loads no TensorFlow. A new kind
(an evaluation protocol, a weight importer) is one entry in ``PROVIDERS``.
"""
import dataclasses
import importlib
import inspect
import re
import types
from typing import Any, Mapping

# kind -> modules whose import registers that kind's components.
PROVIDERS = {
    "backbone": ("tfface.backbones",),
    "head": ("tfface.heads",),
    "loss": ("tfface.losses",),
    "centres": ("tfface.layers",),
    "optimizer": ("tfface.training.optimizers",),
    "schedule": ("tfface.training.schedules",),
    "head_wrapper": ("tfface.heads",),
    "protocol": ("tfface.eval.protocols",),
    "importer": ("tfface.interop.importers",),
}


class RegistryError(ValueError):
    """An unknown kind or name, or arguments a component does not take."""


@dataclasses.dataclass(frozen=True)
class Component:
    """A pluggable part of a recipe: a registered ``name`` and its constructor ``args``.

    Written in recipes and JSON flat, ``{"name": "arcface", "margin": 0.5}``.
    """

    name: str
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise RegistryError(f"a component name is a non-empty string, got {self.name!r}")
        if "name" in self.args:
            raise RegistryError(
                f"{self.name}: 'name' is the component's registered name; an argument called "
                "'name' cannot be written in the flat form"
            )
        # Frozen all the way down: a recipe value cannot be changed behind its back.
        object.__setattr__(self, "args", types.MappingProxyType(dict(self.args)))

    def with_args(self, **args):
        """A copy with ``args`` updated."""
        return Component(self.name, {**self.args, **args})

    def to_dict(self):
        return {"name": self.name, **_plain(self.args)}

    @classmethod
    def from_dict(cls, value, key="component"):
        if isinstance(value, Component):
            return value
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Mapping) or "name" not in value:
            raise RegistryError(f"{key}: expected a component {{'name': ..., <args>}}, got {value!r}")
        args = dict(value)
        name = args.pop("name")
        return cls(name, args)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"Component({self.name!r}{', ' if args else ''}{args})"

    def __eq__(self, other):
        return isinstance(other, Component) and self.name == other.name and dict(self.args) == dict(other.args)

    def __hash__(self):
        return hash((self.name, tuple(sorted(self.args))))


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Component):
        return value.to_dict()
    return value


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    target: Any
    inject: tuple
    aliases: tuple
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def doc(self):
        """The first line of the target's docstring."""
        text = inspect.getdoc(self.target) or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    def _signature(self):
        target = self.target
        try:
            return inspect.signature(target.__init__ if isinstance(target, type) else target)
        except (TypeError, ValueError):
            return None

    def parameters(self):
        """``{name: default}`` of the arguments a recipe may set (``inspect.Parameter.empty`` for
        required ones); ``None`` when the target accepts anything (``**kwargs`` only)."""
        sig = self._signature()
        if sig is None:
            return None
        params = {}
        for pname, p in sig.parameters.items():
            if pname == "self" or pname in self.inject:
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[pname] = p.default
        return params

    def accepts_any(self):
        # A class's **kwargs go to its Keras base, which takes only BASE_KWARGS: a misspelt
        # argument must still fail here, naming the dotted key.
        if isinstance(self.target, type):
            return False
        sig = self._signature()
        return sig is None or any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


_REGISTRY = {kind: {} for kind in PROVIDERS}
_ALIASES = {kind: {} for kind in PROVIDERS}
# Keyword arguments every Keras layer / loss / optimizer takes through **kwargs.
BASE_KWARGS = ("name", "dtype", "trainable", "reduction")


def _snake(name):
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _check_kind(kind):
    if kind not in _REGISTRY:
        raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(PROVIDERS)}")


def register(kind, name=None, *, inject=(), aliases=(), **meta):
    """Decorator registering a class or builder function as component ``name`` of ``kind``.

    ``meta`` is what the kind records beside the target (a backbone's native ``input_shape``,
    default ``embedding_size`` and ``min_input_size``); read it as ``entry(kind, name).meta``.

    ``name`` defaults to the snake_case of the class or function name (``HardMining`` ->
    ``hard_mining``); a class is also found by its class name. Registering a name twice is an
    error (two modules silently shadowing each other would make ``build`` depend on import order).
    """
    _check_kind(kind)

    def decorator(target):
        key = name or _snake(target.__name__)
        existing = _REGISTRY[kind].get(key)
        if existing is not None and existing.target is not target:
            raise RegistryError(
                f"{kind} {key!r} is already registered (by {existing.target.__module__}."
                f"{existing.target.__qualname__})"
            )
        extra = tuple(aliases) + ((target.__name__,) if isinstance(target, type) else ())
        entry = Entry(kind, key, target, tuple(inject), tuple(a for a in extra if a != key),
                      types.MappingProxyType(dict(meta)))
        _REGISTRY[kind][key] = entry
        for alias in entry.aliases:
            _ALIASES[kind].setdefault(alias, key)
        return target

    return decorator


def _load(kind):
    _check_kind(kind)
    for module in PROVIDERS[kind]:
        importlib.import_module(module)


def names(kind):
    """The registered names of ``kind``, in registration order."""
    _load(kind)
    return list(_REGISTRY[kind])


def entry(kind, name, key=None):
    """The :class:`Entry` registered as ``name`` (or one of its aliases) under ``kind``."""
    _load(kind)
    found = _REGISTRY[kind].get(name) or _REGISTRY[kind].get(_ALIASES[kind].get(name, ""))
    if found is None:
        where = f"{key}: " if key else ""
        raise RegistryError(f"{where}unknown {kind} {name!r}; known: {', '.join(names(kind))}")
    return found


def get(kind, name):
    """The class or function registered as ``name`` under ``kind``."""
    return entry(kind, name).target


def check_args(kind, component, key=None):
    """Raise :class:`RegistryError` naming ``key.<arg>`` for an argument the component does not
    take, or for a required argument that is missing."""
    component = Component.from_dict(component, key or kind)
    found = entry(kind, component.name, key)
    params = found.parameters()
    where = key or kind
    if params is None:
        return found
    for arg in component.args:
        if arg in found.inject:
            raise RegistryError(
                f"{where}.{arg}: set by the builder for {kind} {found.name!r}, not in a recipe"
            )
        if arg not in params and arg not in BASE_KWARGS and not found.accepts_any():
            raise RegistryError(
                f"{where}.{arg}: {kind} {found.name!r} has no argument {arg!r}; valid: "
                f"{', '.join(params) or '(none)'}"
            )
    missing = [p for p, d in params.items() if d is inspect.Parameter.empty and p not in component.args]
    if missing:
        raise RegistryError(f"{where}: {kind} {found.name!r} needs {', '.join(missing)}")
    return found


def resolved_args(kind, component, key=None):
    """``component.args`` completed with the registered defaults of every other argument (what
    ``tfface recipe show`` prints); injected arguments are left out."""
    component = Component.from_dict(component, key or kind)
    found = check_args(kind, component, key)
    params = found.parameters() or {}
    args = {}
    for pname, default in params.items():
        if pname in component.args:
            args[pname] = component.args[pname]
        elif pname == "name":
            continue  # Keras' own object name: in the flat form "name" is the component's
        elif default is not inspect.Parameter.empty and _is_plain(default):
            args[pname] = default
    for arg, value in component.args.items():
        args.setdefault(arg, value)
    return Component(found.name, args)


def _is_plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def build(kind, component, key=None, **provided):
    """Construct ``component`` (a :class:`Component`, ``{"name": ..., **args}`` or a name) of
    ``kind``. ``provided`` holds the builder's values for the entry's ``inject`` arguments; one
    the entry did not declare is an error, as is an argument the component does not take.

    ``key`` is the dotted recipe key of the component (``"head"``, ``"aux_losses.centre"``) used
    in error messages.
    """
    component = Component.from_dict(component, key or kind)
    found = check_args(kind, component, key)
    undeclared = [p for p in provided if p not in found.inject]
    if undeclared:
        raise RegistryError(
            f"{key or kind}: {kind} {found.name!r} does not take {', '.join(undeclared)} "
            f"(declared: {', '.join(found.inject) or 'none'})"
        )
    missing = [p for p in found.inject if p not in provided]
    if missing:
        raise RegistryError(f"{key or kind}: {kind} {found.name!r} needs {', '.join(missing)} from the builder")
    try:
        return found.target(**provided, **dict(component.args))
    except (TypeError, ValueError) as err:
        raise RegistryError(f"{key or kind}: {kind} {found.name!r}: {err}") from err
