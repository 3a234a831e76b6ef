"""The string catalogues of the pages, one per language, and choosing a language."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sessionclock.constants import DEFAULT_LANGUAGE, LANGUAGES

CATALOGUE_DIR = Path(__file__).parent / "static" / "i18n"


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """Every string the pages show, in one language; keys are the same in all."""
    if language not in LANGUAGES:
        raise ValueError(f"expected one of {LANGUAGES}, got {language!r}")
    path = CATALOGUE_DIR / f"{language}.json"
    strings: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return strings


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The language to speak: the one the user chose, else the browser's best."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
