"""The form's eight inputs: names, plain-language labels, starting values and the API's bounds.

No Streamlit and no HTTP here: the pages and the client share these definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from housing.contract import FEATURES

# The data's medians: the 20,640 block groups of scikit-learn's California Housing
# (data/01_raw/california_housing.csv). The form starts from a typical district.
MEDIANS = {
    "MedInc": 3.5348,
    "HouseAge": 29.0,
    "AveRooms": 5.229129,
    "AveBedrms": 1.04878,
    "Population": 1166.0,
    "AveOccup": 2.818116,
    "Latitude": 34.26,
    "Longitude": -118.49,
}

# The API's input rules (src/housing/serving/schemas.py, as GET /model's `features`
# reports them), for when the API cannot be asked. A test keeps the two identical.
FALLBACK_SCHEMA: dict[str, dict[str, Any]] = {
    "MedInc": {"exclusiveMinimum": 0, "maximum": 100},
    "HouseAge": {"minimum": 0, "maximum": 200},
    "AveRooms": {"exclusiveMinimum": 0, "maximum": 1000},
    "AveBedrms": {"minimum": 0, "maximum": 1000},
    "Population": {"minimum": 1, "maximum": 1_000_000},
    "AveOccup": {"exclusiveMinimum": 0, "maximum": 10_000},
    "Latitude": {"minimum": 32.4, "maximum": 42.1},
    "Longitude": {"minimum": -124.5, "maximum": -114.0},
}


@dataclass(frozen=True)
class Field:
    """One input of the form: what a person reads, and the API's bounds."""

    name: str
    label: str
    help: str
    step: float
    format: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    @property
    def widget_min(self) -> float | None:
        """A number input has no open interval: "above 0" starts one small step above."""
        if self.minimum is None:
            return None
        return self.minimum + 0.01 if self.exclusive_minimum else self.minimum

    def rule(self) -> str:
        low = f"above {self.minimum:g}" if self.exclusive_minimum else f"at least {self.minimum:g}"
        parts = [low] if self.minimum is not None else []
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        return ", ".join(parts)


FIELD_TEXT: dict[str, tuple[str, str, float, str]] = {
    # name: (label, help, step, format)
    "MedInc": (
        "Median income (tens of thousands of $)",
        "Median household income in the block group: 3.5 means $35,000 a year.",
        0.1,
        "%.4f",
    ),
    "HouseAge": ("Median house age (years)", "Median age of the houses in the block group.", 1.0, "%.0f"),
    "AveRooms": ("Average rooms per household", "All rooms, bedrooms included.", 0.1, "%.2f"),
    "AveBedrms": (
        "Average bedrooms per household",
        "Bedrooms are rooms: not more than the average rooms.",
        0.05,
        "%.2f",
    ),
    "Population": ("Population (people in the block group)", "How many people live there.", 10.0, "%.0f"),
    "AveOccup": ("Average people per household", "Population divided by households.", 0.1, "%.2f"),
    "Latitude": ("Latitude (degrees north)", "Inside California: 32.4 to 42.1.", 0.01, "%.4f"),
    "Longitude": (
        "Longitude (degrees east; west is negative)",
        "Inside California: -124.5 to -114.0.",
        0.01,
        "%.4f",
    ),
}

# How the explanation's groups and features read (unknown names are shown as they are).
PLAIN_NAMES = {
    "MedInc": "Median income",
    "HouseAge": "House age",
    "AveRooms": "Rooms per household",
    "AveBedrms": "Bedrooms per household",
    "Population": "Population",
    "AveOccup": "People per household",
    "Latitude": "Latitude",
    "Longitude": "Longitude",
}


def label(name: str) -> str:
    return FIELD_TEXT[name][0] if name in FIELD_TEXT else name


def plain_name(name: str) -> str:
    return PLAIN_NAMES.get(name, name)


def form_fields(schema: Mapping[str, Mapping[str, Any]] | None = None) -> list[Field]:
    """The 8 inputs with the bounds of ``schema`` (GET /model's ``features``), falling
    back to ``FALLBACK_SCHEMA`` for any feature it does not describe."""
    fields = []
    for name in FEATURES:
        spec = (schema or {}).get(name) or FALLBACK_SCHEMA[name]
        text, help_text, step, fmt = FIELD_TEXT[name]
        exclusive = spec.get("exclusiveMinimum")
        minimum = exclusive if exclusive is not None else spec.get("minimum")
        maximum = spec.get("exclusiveMaximum", spec.get("maximum"))
        bounds = {
            "minimum": None if minimum is None else float(minimum),
            "maximum": None if maximum is None else float(maximum),
            "exclusive_minimum": exclusive is not None,
        }
        rule = Field(name, text, help_text, step, fmt, **bounds).rule()
        help_text = f"{help_text} Allowed: {rule}." if rule else help_text
        fields.append(Field(name, text, help_text, step, fmt, **bounds))
    return fields
