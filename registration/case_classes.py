"""The three annotation class lists of a case's ``pathology`` section (cancer, ignore, exclude), as
``registration.annotations`` reads them: a list given in case.yaml replaces its default, a default
list gives up the names a given list claims, and one name in two given lists is refused.

Inputs: the parsed ``pathology`` section. Outputs: the three tuples. Files: none."""

from __future__ import annotations

from edge_runtime.errors import ConfigError
from registration.case_schema import DEFAULT_CANCER_CLASSES, DEFAULT_EXCLUDE_CLASSES, DEFAULT_IGNORE_CLASSES

DEFAULTS = {
    "cancer_classes": DEFAULT_CANCER_CLASSES,
    "ignore_classes": DEFAULT_IGNORE_CLASSES,
    "exclude_classes": DEFAULT_EXCLUDE_CLASSES,
}


def names(val: str | list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if val is None:
        return default
    return (val,) if isinstance(val, str) else tuple(val)


def class_lists(p, where: str) -> dict[str, tuple[str, ...]]:
    """The three class lists, a default one without the names a given list claims (a site whose
    cancer class is called "Other" gives it in cancer_classes alone). ConfigError when two given
    lists name one class: which role wins would be a guess."""
    given = {key: getattr(p, key) for key in DEFAULTS}
    lists = {key: names(given[key], DEFAULTS[key]) for key in given}
    keys = list(given)
    for i, key in enumerate(keys):
        for other in keys[i + 1 :]:
            both = sorted(
                {n.lower() for n in lists[key]} & {n.lower() for n in lists[other]}
            )  # matched case aside
            if both and given[key] is not None and given[other] is not None:
                raise ConfigError(
                    f"{where}: {both[0]!r} is in both pathology.{key} and pathology.{other}; give it one role"
                )
    claimed = {name.lower() for key in keys if given[key] is not None for name in lists[key]}
    return {
        key: lists[key]
        if given[key] is not None
        else tuple(n for n in lists[key] if n.lower() not in claimed)
        for key in keys
    }
