"""A seeded generator of (human-written date, ISO ``YYYY-MM-DD``) pairs in five languages.

Every string has exactly one reading under the conventions stated here (no locale is consulted;
all month and weekday names are written out below):

- Dates run from 1950-01-01 to 2049-12-31. A two-digit year ``yy`` means ``20yy`` when
  ``yy < 50`` and ``19yy`` otherwise (pivot 50).
- Numeric formats: ``iso`` ``YYYY-MM-DD``; ``compact`` ``YYYYMMDD``; ``dmy_dot`` ``D.M.YYYY`` /
  ``DD.MM.YY`` (day first, dot separator); ``dmy_dash`` ``DD-MM-YYYY`` / ``DD-MM-YY`` (day first, a
  year-last dash); ``mdy_slash`` ``M/D/YYYY`` / ``MM/DD/YY`` (US convention: a slash means month
  first). The separator therefore states the convention.
- Written formats, per language ``en fr de es it``: ``long`` (full month name), ``abbr``
  (abbreviated month), ``ordinal`` (ordinal day: "3rd", "1er", "3.", "1º"), ``weekday`` (a
  weekday name that matches the date, full or abbreviated). A format's id is
  ``<template>_<language>``, e.g. ``weekday_de``.
- Noise on every string: random case (lower, upper, title), accents dropped, commas and
  abbreviation dots dropped, doubled spaces, a trailing full stop.

`make_splits` partitions the calendar days into disjoint train/val/test pools, so no test date is
ever seen in training, and can hold whole formats out of training for a held-out-format test.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FIRST_DAY = dt.date(1950, 1, 1)
LAST_DAY = dt.date(2049, 12, 31)
PIVOT = 50  # yy < PIVOT -> 20yy, else 19yy

LANGS = ("en", "fr", "de", "es", "it")
NUMERIC = ("iso", "compact", "dmy_dot", "dmy_dash", "mdy_slash")
TEMPLATES = ("long", "abbr", "ordinal", "weekday")

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre "
    "dicembre",
}
MONTHS_ABBR = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "fr": "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
    "de": "Jan. Feb. März Apr. Mai Juni Juli Aug. Sept. Okt. Nov. Dez.",
    "es": "ene. feb. mar. abr. may. jun. jul. ago. sept. oct. nov. dic.",
    "it": "gen feb mar apr mag giu lug ago set ott nov dic",
}
WEEKDAYS = {  # Monday first, as datetime.date.weekday()
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
    "it": "lunedì martedì mercoledì giovedì venerdì sabato domenica",
}
WEEKDAYS_ABBR = {
    "en": "Mon Tue Wed Thu Fri Sat Sun",
    "fr": "lun. mar. mer. jeu. ven. sam. dim.",
    "de": "Mo. Di. Mi. Do. Fr. Sa. So.",
    "es": "lun. mar. mié. jue. vie. sáb. dom.",
    "it": "lun mar mer gio ven sab dom",
}


def _names(table: dict[str, str]) -> dict[str, list[str]]:
    return {lang: text.split() for lang, text in table.items()}


_MONTHS, _MONTHS_ABBR = _names(MONTHS), _names(MONTHS_ABBR)
_WEEKDAYS, _WEEKDAYS_ABBR = _names(WEEKDAYS), _names(WEEKDAYS_ABBR)


def all_formats() -> list[str]:
    """Every format id: the numeric ones, then ``<template>_<language>``."""
    return [*NUMERIC, *(f"{t}_{lang}" for t in TEMPLATES for lang in LANGS)]


def iso(d: dt.date) -> str:
    return d.isoformat()


def two_digit_year(year: int) -> int:
    """The full year a two-digit year means under the stated pivot."""
    return 2000 + year if year < PIVOT else 1900 + year


def _en_ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


Rng = np.random.Generator


def _pick(rng: Rng, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _year(d: dt.date, rng: Rng, p_short: float = 0.3) -> str:
    return f"{d.year % 100:02d}" if rng.random() < p_short else str(d.year)


def _day(d: dt.date, rng: Rng) -> str:
    return f"{d.day:02d}" if rng.random() < 0.3 else str(d.day)


def _numeric(fmt: str, d: dt.date, rng: Rng) -> str:
    if fmt == "iso":
        return iso(d)
    if fmt == "compact":
        return f"{d.year}{d.month:02d}{d.day:02d}"
    pad = rng.random() < 0.5
    day, month = (f"{d.day:02d}", f"{d.month:02d}") if pad else (str(d.day), str(d.month))
    year = _year(d, rng, 0.4)
    if fmt == "dmy_dot":
        return f"{day}.{month}.{year}"
    if fmt == "dmy_dash":
        return f"{d.day:02d}-{d.month:02d}-{year}"
    if fmt == "mdy_slash":
        return f"{month}/{day}/{year}"
    raise ValueError(f"unknown numeric format {fmt!r}")


def _day_month(lang: str, d: dt.date, rng: Rng, month: str, ordinal: bool) -> str:
    """Day and month in the language's order, with the day plain or ordinal."""
    if lang == "en":
        day = _en_ordinal(d.day) if ordinal else _day(d, rng)
        style = int(rng.integers(3 if ordinal else 2))
        if style == 0:
            return f"{day} {month}"
        if style == 1:
            return f"{month} {day},"
        return f"the {day} of {month}"
    if lang == "de":
        return f"{d.day}. {month}"
    if lang == "es":
        day = "1º" if ordinal and d.day == 1 else _day(d, rng)
        return f"{day} de {month} de" if rng.random() < 0.7 or ordinal else f"{day} {month}"
    if lang == "fr":
        day = "1er" if ordinal and d.day == 1 else _day(d, rng)
        return f"{day} {month}"
    day = "1º" if ordinal and d.day == 1 else _day(d, rng)  # it
    return f"{day} {month}"


_ARTICLE = {"en": "", "fr": "le ", "de": "am ", "es": "el ", "it": "il "}


def _written(template: str, lang: str, d: dt.date, rng: Rng) -> str:
    m = d.month - 1
    if template == "long":
        text = f"{_day_month(lang, d, rng, _MONTHS[lang][m], False)} {_year(d, rng, 0.15)}"
    elif template == "abbr":
        text = f"{_day_month(lang, d, rng, _MONTHS_ABBR[lang][m], False)} {_year(d, rng, 0.4)}"
    elif template == "ordinal":
        body = f"{_day_month(lang, d, rng, _MONTHS[lang][m], True)} {_year(d, rng, 0.2)}"
        text = body if body.startswith("the ") else _ARTICLE[lang] + body
    elif template == "weekday":
        short = rng.random() < 0.35
        weekday = (_WEEKDAYS_ABBR if short else _WEEKDAYS)[lang][d.weekday()]
        month = (_MONTHS_ABBR if short else _MONTHS)[lang][m]
        sep = ", " if lang in ("en", "de", "es") and rng.random() < 0.7 else " "
        text = f"{weekday}{sep}{_day_month(lang, d, rng, month, lang == 'en' and not short)} "
        text += _year(d, rng, 0.3)
    else:
        raise ValueError(f"unknown template {template!r}")
    return text


def render(fmt: str, d: dt.date, rng: Rng) -> str:
    """``d`` written in format ``fmt`` (an id from `all_formats`), before noise."""
    if fmt in NUMERIC:
        return _numeric(fmt, d, rng)
    template, _, lang = fmt.rpartition("_")
    if template not in TEMPLATES or lang not in LANGS:
        raise ValueError(f"unknown date format {fmt!r}; choose from {all_formats()}")
    return _written(template, lang, d, rng)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def add_noise(text: str, rng: Rng, p: float = 1.0) -> str:
    """Random case, dropped accents/commas/abbreviation dots, doubled spaces, trailing stop;
    ``p`` scales every probability (0 = no noise)."""
    r = rng.random(7)
    if r[0] < 0.15 * p:
        text = _strip_accents(text)
    if r[1] < 0.25 * p:
        text = text.replace(",", "")
    if r[2] < 0.2 * p:
        text = "".join(
            "" if c == "." and i > 0 and text[i - 1].isalpha() else c for i, c in enumerate(text)
        )
    if r[3] < 0.1 * p and " " in text:
        spaces = [i for i, c in enumerate(text) if c == " "]
        i = spaces[int(rng.integers(len(spaces)))]
        text = text[:i] + " " + text[i:]
    if r[4] < 0.05 * p and not text.endswith("."):
        text += "."
    case = r[5] / max(p, 1e-9)
    if case < 0.2:
        text = text.lower()
    elif case < 0.3:
        text = text.upper()
    elif case < 0.4:
        text = text.title()
    return text.strip()


@dataclass
class DateSplits:
    """Disjoint sets of ``(source, target, format)`` triples."""

    train: list[tuple[str, str, str]]
    val: list[tuple[str, str, str]]
    test: list[tuple[str, str, str]]
    test_heldout: list[tuple[str, str, str]]  # test-pool dates in the held-out formats
    formats: list[str]  # formats seen in training
    heldout_formats: list[str]


def make_splits(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    n_test: int,
    n_heldout: int,
    heldout_formats: Sequence[str] = (),
    noise: float = 1.0,
    date_fractions: tuple[float, float] = (0.8, 0.1),
) -> DateSplits:
    """Partition the calendar days into train/val/test pools (``date_fractions`` for train and
    val, the rest test), then write each pool's dates in random formats with noise."""
    known = all_formats()
    bad = [f for f in heldout_formats if f not in known]
    if bad:
        raise ValueError(f"heldout_formats: unknown format(s) {bad}; choose from {known}")
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    a, b = date_fractions
    if not (0 < a and 0 < b and a + b < 1):
        raise ValueError(
            f"date_fractions must be two positive fractions summing below 1, got {a, b}"
        )
    rng = np.random.default_rng(seed)
    days = (LAST_DAY - FIRST_DAY).days + 1
    order = rng.permutation(days)
    cut1, cut2 = int(days * a), int(days * (a + b))
    pools = order[:cut1], order[cut1:cut2], order[cut2:]
    seen = [f for f in known if f not in heldout_formats]

    def draw(pool: np.ndarray, n: int, formats: Sequence[str]) -> list[tuple[str, str, str]]:
        out = []
        for _ in range(n):
            d = FIRST_DAY + dt.timedelta(days=int(pool[int(rng.integers(len(pool)))]))
            fmt = _pick(rng, formats)
            out.append((add_noise(render(fmt, d, rng), rng, noise), iso(d), fmt))
        return out

    train = draw(pools[0], n_train, seen)
    val = draw(pools[1], n_val, seen)
    test = draw(pools[2], n_test, seen)
    held = draw(pools[2], n_heldout, list(heldout_formats)) if heldout_formats else []
    return DateSplits(train, val, test, held, seen, list(heldout_formats))
