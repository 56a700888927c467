"""Command-line flags generated from a config dataclass, so each setting is declared once.

A field declared with ``flag(default, help=...)`` becomes ``--field-name`` (or ``name``) with the
field's type and default; ``add_flags`` registers the fields on an ``argparse`` parser and
``flag_values`` reads them back as keyword arguments of the dataclass. A ``bool`` field becomes a
``store_true`` switch. With ``several=True`` every other flag takes one or more values
(``nargs="+"``, read back as lists), for commands that sweep a grid of settings.
"""

import dataclasses

_REQUIRED = dataclasses.MISSING


def flag(default=_REQUIRED, *, help=None, type=None, name=None, choices=None):  # noqa: A002
    """A dataclass field that ``add_flags`` turns into a flag. ``type`` is needed only where the
    annotation is not a plain type (``float | None``); ``name`` overrides ``--field-name``."""
    metadata = {"help": help, "type": type, "name": name, "choices": choices}
    if default is _REQUIRED:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field):
    """The option string of ``field``: its ``name`` metadata or ``--`` + the dashed field name."""
    return field.metadata.get("name") or "--" + field.name.replace("_", "-")


def _fields(config_class, names, exclude=()):
    fields = {f.name: f for f in dataclasses.fields(config_class) if "help" in f.metadata}
    chosen = [fields[n] for n in names] if names is not None else list(fields.values())
    return [f for f in chosen if f.name not in exclude]


def add_flags(parser, config_class, names=None, *, exclude=(), defaults=True, several=False):
    """Add a flag to ``parser`` for each flag field of ``config_class`` (those in ``names``, if
    given, less those in ``exclude``).

    ``defaults=False`` gives every flag the default None, for flags that override another source
    of settings (a preset) only when given. ``several=True`` lets each non-``bool`` flag take one
    or more values (a list; the default becomes a one-element list)."""
    for field in _fields(config_class, names, exclude):
        default = field.default if defaults and field.default is not _REQUIRED else None
        help_text = field.metadata["help"]
        if field.type is bool:
            parser.add_argument(flag_name(field), dest=field.name, action="store_true",
                                help=help_text)
            continue
        kind = field.metadata["type"] or field.type
        if defaults and default is not None and help_text:
            help_text = f"{help_text} (default {default})"
        if several:
            default = None if default is None else [default]
        parser.add_argument(flag_name(field), dest=field.name, type=kind, default=default,
                            choices=field.metadata["choices"], help=help_text,
                            nargs="+" if several else None)


def flag_values(args, config_class, names=None):
    """``{field: value}`` of the flags ``add_flags`` registered, read from parsed ``args``."""
    return {f.name: getattr(args, f.name) for f in _fields(config_class, names)}
