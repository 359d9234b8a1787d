"""Observable properties: a value on a QObject that emits ``<name>_changed`` when it changes.

The idea of krita-ai-diffusion's ``properties.py``, in a few lines. Declare the property and its
signal side by side (the signal is spelled out so type checkers and readers see it)::

    class Selection(QObject):
        face_changed = Signal(object)
        face = Property[int | None](None)

Setting ``selection.face = 2`` stores the value and emits ``face_changed(2)``; setting the same
value again emits nothing. A class that declares a property without its signal fails at import.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class Property(Generic[T]):
    """A value stored per instance that emits ``<name>_changed(value)`` when it changes."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        if not hasattr(owner, f"{name}_changed"):
            raise TypeError(f"{owner.__name__}.{name} needs a signal {name}_changed declared before it")
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Property[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Property[T] | T:
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)

    def __set__(self, obj: Any, value: T) -> None:
        if obj.__dict__.get(self.name, self.default) == value:
            return
        obj.__dict__[self.name] = value
        getattr(obj, f"{self.name}_changed").emit(value)
