"""Classes of the user's own, named as ``"package.module:Class"`` where a registry name goes
(a face detector, a backend): the one rule for what such a name is, and its import.

The registries name their own factories the same way (``"module:attribute"``); theirs may be
functions, the user's must be classes: a module, a function or a constant named there (``os:path``,
``json:loads``, ``os:sep``) is refused as it is loaded, in one line, not when it is first called.
"""
import importlib
import inspect

from .errors import FaceAlignmentError

FORM = "'package.module:Class'"


def is_reference(text) -> bool:
    """Whether ``text`` has the form ``package.module:Class``: dotted identifiers, a colon, and a
    class name (dotted for a nested class). Nothing is imported."""
    if not isinstance(text, str):
        return False
    module, colon, attribute = text.partition(":")
    return bool(colon) and all(part.isidentifier() for part in module.split(".") + attribute.split("."))


def load_reference(reference: str, what: str, error=FaceAlignmentError, class_only: bool = True):
    """The attribute ``reference`` (``module:attribute``) names, imported now; with
    ``class_only`` (a name the user gave), refused unless it is a class. Every failure raises
    ``error`` in one line starting ``what 'reference':``."""
    if not is_reference(reference):
        raise error(f"{what} {reference!r}: expected a {FORM}")
    module_name, _, attribute = reference.partition(":")
    try:
        found = importlib.import_module(module_name)
    except ImportError as e:
        raise error(f"{what} {reference!r}: cannot import {module_name} ({e})") from None
    try:
        for part in attribute.split("."):
            found = getattr(found, part)
    except AttributeError:
        raise error(f"{what} {reference!r}: {module_name} has no {attribute!r}") from None
    if class_only and not inspect.isclass(found):
        kind = "module" if inspect.ismodule(found) else "function" if callable(found) else type(found).__name__
        raise error(f"{what} {reference!r}: {attribute} is a {kind}, not a class; expected a {FORM}")
    return found
