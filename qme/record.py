"""A light stand-in for @dataclass, for the records on `qme run`'s start-up path.

`dataclasses` imports `inspect`, which alone costs more start-up time than the
rest of `qme run`'s imports; these records need only __init__, __eq__, __repr__
and copy(). Fields are the class's annotations, in order; a class attribute is
the default, and a default of `dict` or `list` (the type) makes a fresh one.
"""

from __future__ import annotations

_FACTORIES = (dict, list)


class Record:
    FIELDS: tuple[str, ...] = ()
    HIDDEN_FROM_REPR: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in vars(klass).get("__annotations__", {}):
                if name not in names and name.isidentifier() and name.upper() != name:
                    names.append(name)
        cls.FIELDS = tuple(names)

    def __init__(self, **values):
        cls = type(self)
        for name in cls.FIELDS:
            if name in values:
                value = values.pop(name)
            elif hasattr(cls, name):
                value = getattr(cls, name)
                value = value() if value in _FACTORIES else value
            else:
                raise TypeError(f"{cls.__name__} needs {name!r}")
            setattr(self, name, value)
        if values:
            raise TypeError(f"{cls.__name__} has no field {', '.join(map(repr, values))}")

    def copy(self, **changes):
        return type(self)(**{**{n: getattr(self, n) for n in self.FIELDS}, **changes})

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    def __repr__(self):
        shown = (n for n in self.FIELDS if n not in self.HIDDEN_FROM_REPR)
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"
