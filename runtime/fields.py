"""Field-by-field type checks of the model folder's JSON files: a spec maps each field to (check,
description); unknown fields and wrongly typed values are errors naming the file and the field."""
from __future__ import annotations

import json
import math

from runtime.folder_io import REEXPORT_HINT, ModelFolderError


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


POSITIVE_INT = (lambda v: is_int(v) and v >= 1, "a positive integer")
BOOL = (lambda v: isinstance(v, bool), "true or false")
LANGUAGE = (lambda v: v is None or (isinstance(v, str) and 2 <= len(v) <= 8 and v.replace("-", "").isalnum()),
            'null or a language code such as "en"')


def field_error(where: str, field_name: str, want: str, value) -> ModelFolderError:
    shown = json.dumps(value)[:40] if not isinstance(value, float) else repr(value)
    return ModelFolderError(f"{where}: field {field_name!r} must be {want}, got {shown}; {REEXPORT_HINT}")


def check_fields(where: str, d, spec: dict, prefix: str = "") -> None:
    """Unknown keys and wrongly typed values are errors naming the file and the field."""
    if not isinstance(d, dict):
        raise ModelFolderError(f"{where}: must be a JSON object{f' at {prefix!r}' if prefix else ''}; {REEXPORT_HINT}")
    unknown = sorted(set(d) - set(spec))
    if unknown:  # a folder from a newer writer is not half-read
        raise ModelFolderError(f"{where}: unknown field {prefix + unknown[0]!r}; {REEXPORT_HINT}")
    for name, value in d.items():
        ok, want = spec[name]
        if not ok(value):
            raise field_error(where, prefix + name, want, value)


def require_fields(where: str, d: dict, names) -> None:
    missing = [f for f in names if f not in d]
    if missing:
        raise ModelFolderError(f"{where}: field {missing[0]!r} is missing; {REEXPORT_HINT}")
