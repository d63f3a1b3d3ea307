"""Plain data records: the part of :mod:`dataclasses` the runtime uses.

``xc-runtime`` starts a new interpreter for every command, and importing
:mod:`dataclasses` (which pulls in :mod:`inspect`, :mod:`re` and more) costs
more than the rest of a short command.  :func:`record` builds ``__init__``,
``__repr__`` and ``__eq__`` (and, when frozen, ``__setattr__``,
``__delattr__`` and ``__hash__``) from the class's annotations and defaults,
without generating source code and without importing anything; fields()
and replace() are the helpers that go with it.

    @record
    class Point:
        x: int
        y: int = 0
        tags: list[str] = field(default_factory=list)

Only what the runtime needs is supported: no ``ClassVar``/``InitVar``,
``__post_init__``, ordering or keyword-only fields.  Records may inherit
from records; a base's fields come first.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar, dataclass_transform

    _T = TypeVar("_T")
    _C = TypeVar("_C", bound=type)
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[_T], _T]:
        """Only type checkers read this marker (PEP 681)."""
        return lambda f: f


__all__ = ["record", "field", "fields", "replace"]

_MISSING = object()
_FIELDS = "__record_fields__"  # class attribute: ((name, default), ...)


class _Factory:
    """The default of a field whose value is made anew for every record."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __repr__(self) -> str:
        return f"field(default_factory={self.make!r})"


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A field whose default is ``default_factory()``, called per record."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    specs: tuple[tuple[str, Any], ...] = getattr(type(self), _FIELDS)
    if len(args) > len(specs):
        raise TypeError(f"{type(self).__name__}() takes {len(specs)} positional arguments "
                        f"but {len(args)} were given")
    setter = object.__setattr__
    for i, (name, default) in enumerate(specs):
        if i < len(args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            value = args[i]
        elif name in kwargs:
            value = kwargs.pop(name)
        elif default is _MISSING:
            raise TypeError(f"{type(self).__name__}() missing required argument: {name!r}")
        elif type(default) is _Factory:
            value = default.make()
        else:
            value = default
        setter(self, name, value)
    if kwargs:  # what is left matched no field
        raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name, _ in getattr(type(obj), _FIELDS))


def _repr(self: Any) -> str:
    body = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in getattr(type(self), _FIELDS))
    return f"{type(self).__qualname__}({body})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise AttributeError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r} of frozen {type(self).__name__}")


def _make(cls: _C, frozen: bool) -> _C:
    specs: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        for name, default in getattr(base, _FIELDS, ()):
            specs[name] = default
    for name in cls.__dict__.get("__annotations__", {}):
        default = cls.__dict__.get(name, _MISSING)
        if type(default) is _Factory:
            delattr(cls, name)  # as dataclasses: no shared mutable class attribute
        specs[name] = default
    seen_default = False
    for name, default in specs.items():
        if default is not _MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with a default")
    setattr(cls, _FIELDS, tuple(specs.items()))
    cls.__init__ = _init  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq  # type: ignore[assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
        cls.__hash__ = _hash  # type: ignore[assignment]
    elif "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value
    return cls


@dataclass_transform(field_specifiers=(field,))
def record(cls: Any = None, /, *, frozen: bool = False) -> Any:
    """Class decorator: a record with the class's annotated fields
    (``@record`` or ``@record(frozen=True)``)."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def fields(obj: Any) -> tuple[str, ...]:
    """The field names of a record (class or instance), in order."""
    return tuple(name for name, _ in getattr(obj if isinstance(obj, type) else type(obj), _FIELDS))


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record *obj* with some fields changed."""
    for name in changes:
        if name not in fields(obj):
            raise TypeError(f"{type(obj).__name__} has no field {name!r}")
    values = {name: getattr(obj, name) for name in fields(obj)}
    values.update(changes)
    return type(obj)(**values)
