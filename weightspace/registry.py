"""``Registry``: one name -> one thing, for whatever a config chooses by name.

Models, tasks, optimizers, edits and zoo recipes are each looked up in a registry instead of an
``if/elif`` chain: a config names the entry (``model.name``, ``task.name``,
``trainer.optimizer``, ``zoo.recipe``), and nothing from a config is instantiated. A registry
can also be filled from a package entry-point group, so that another installed package adds
entries without weightspace importing it (this repository's recipe package registers its
recipes that way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from weightspace.errors import UnknownNameError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Names mapped to objects, filled by :meth:`register` and from an entry-point group.

    Args:
        kind: what an entry is, in words (``"task"``), for error messages.
        config_key: the config key that names an entry (``"task.name"``).
        group: an entry-point group (``"weightspace.recipes"``) whose entries are loaded on the
            first lookup; ``None`` for a registry filled in code alone.

    A lookup of an unknown name raises :class:`~weightspace.errors.UnknownNameError` (a
    ``KeyError``) naming the config key and the known names.
    """

    def __init__(self, kind: str, config_key: str, group: str | None = None):
        self.kind, self.config_key, self.group = kind, config_key, group
        self._entries: dict[str, T] = {}
        self._loaded = group is None

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name`` (as a decorator when ``obj`` is omitted). A name already
        taken by another object is refused: one name, one thing."""
        if obj is None:
            return lambda o: self.register(name, o)
        held = self._entries.get(name)
        if held is not None and held is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({held!r} and {obj!r})")
        self._entries[name] = obj
        return obj

    def _load_entry_points(self):
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                self.register(ep.name, ep.load())

    def __getitem__(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r} (config key {self.config_key}); "
                           f"known: {tuple(sorted(self._entries))}")
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load_entry_points()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self)})"
