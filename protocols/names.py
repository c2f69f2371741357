"""Confusable names: `skeleton(name)`, in the spirit of Unicode TR39's skeleton (sans-I/O).

Two lab names whose skeletons are equal look alike to a reader ("Fablab Nord", "FABLAB NORD",
"Fаblab Nord" with a Cyrillic а, "FabIab N0rd"): a node shows such labs with their short id,
and refuses to pick one of them by name (docs/governance.md, "Names").

The skeleton of a name is, in this order:

1. NFKC (compatibility forms: full-width letters, ligatures, superscripts, "ℕ"...);
2. default-ignorable code points removed (`IGNORED`: zero width (non-)joiners, soft hyphen,
   variation selectors...), which render as nothing;
3. `UPPERCASE_CONFUSABLES`: capitals that look like another letter only as capitals
   (Latin I and l, Greek Η and H, Cyrillic Н and H...), mapped before case is folded;
4. casefold, then NFD with every combining mark dropped (é, ë and e alike);
5. `CONFUSABLES`: the common single-character lookalikes of Latin letters among lowercase
   Cyrillic and Greek letters, and digits/signs that look like letters (0 o, 1 l, | l);
6. `SEQUENCE_CONFUSABLES`: letter pairs read as one letter ("rn" m, "vv" w);
7. dashes unified to "-", runs of white space to one space, ends trimmed; NFC at the end.

This is a compact table of the lookalikes that matter for names typed in Latin-script
languages, not the whole Unicode confusables data (~6,000 entries): a clash it misses still
shows both labs' ids wherever they are listed. A clash it finds between names that a careful
reader can tell apart (e.g. "MAIL" and "MALL": I and l) only costs showing the short ids.
The mapping is idempotent: `skeleton(skeleton(x)) == skeleton(x)`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Code points that render as nothing (Default_Ignorable_Code_Point, the common ones).
IGNORED: Final = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
)

# Capitals that look like a Latin letter other than their own lowercase's lookalike.
UPPERCASE_CONFUSABLES: Final[dict[str, str]] = {
    "I": "l",  # Latin capital I looks like a small L
    "\u0399": "l",  # Greek Ι
    "\u0406": "l",  # Cyrillic І
    "\u04c0": "l",  # Cyrillic palochka Ӏ
    "\u0397": "h",  # Greek Η (its lowercase η looks like n)
    "\u041d": "h",  # Cyrillic Н
    "\u0392": "b",  # Greek Β
    "\u0412": "b",  # Cyrillic В
    "\u039c": "m",  # Greek Μ (its lowercase μ looks like u)
    "\u041c": "m",  # Cyrillic М
    "\u039d": "n",  # Greek Ν (its lowercase ν looks like v)
    "\u03a1": "p",  # Greek Ρ
    "\u0420": "p",  # Cyrillic Р
    "\u03a4": "t",  # Greek Τ
    "\u0422": "t",  # Cyrillic Т
    "\u03a7": "x",  # Greek Χ
    "\u0425": "x",  # Cyrillic Х
    "\u0396": "z",  # Greek Ζ
}

# Lowercase (after casefold and without marks) lookalikes of Latin letters.
CONFUSABLES: Final[dict[str, str]] = {
    # Cyrillic
    "\u0430": "a",  # а
    "\u0432": "b",  # в (small capital B)
    "\u044c": "b",  # ь
    "\u0441": "c",  # с
    "\u0501": "d",  # ԁ
    "\u0435": "e",  # е
    "\u0451": "e",  # ё (without its marks after NFD, kept for clarity)
    "\u0433": "r",  # г
    "\u04bb": "h",  # һ
    "\u043d": "h",  # н (small capital H)
    "\u0456": "i",  # і
    "\u0458": "j",  # ј
    "\u043a": "k",  # к
    "\u04cf": "l",  # ӏ
    "\u043c": "m",  # м (small capital M)
    "\u043f": "n",  # п
    "\u043e": "o",  # о
    "\u0440": "p",  # р
    "\u051b": "q",  # ԛ
    "\u0455": "s",  # ѕ
    "\u0442": "t",  # т (small capital T)
    "\u0443": "y",  # у
    "\u051d": "w",  # ԝ
    "\u0445": "x",  # х
    "\u0437": "3",  # з
    # Greek
    "\u03b1": "a",  # α
    "\u03b2": "b",  # β
    "\u03b5": "e",  # ε
    "\u03b7": "n",  # η
    "\u03b9": "i",  # ι
    "\u03ba": "k",  # κ
    "\u03bc": "u",  # μ
    "\u03bd": "v",  # ν
    "\u03bf": "o",  # ο
    "\u03c1": "p",  # ρ
    "\u03c2": "c",  # ς
    "\u03c4": "t",  # τ
    "\u03c5": "u",  # υ
    "\u03c7": "x",  # χ
    "\u03b3": "y",  # γ
    "\u03c9": "w",  # ω
    "\u03b6": "z",  # ζ
    # Latin letters that are other letters' lookalikes
    "\u0131": "i",  # dotless ı
    "\u0237": "j",  # dotless ȷ
    "\u0251": "a",  # ɑ
    "\u0261": "g",  # ɡ
    "\u026a": "l",  # small capital ɪ
    # Digits and signs
    "0": "o",
    "1": "l",
    "|": "l",
    "\u01c0": "l",  # ǀ (dental click)
    "\u2223": "l",  # ∣
}

# Letter pairs that read as one letter in most fonts.
SEQUENCE_CONFUSABLES: Final[tuple[tuple[str, str], ...]] = (("rn", "m"), ("vv", "w"))

# Hyphens, dashes and minus signs (after NFKC), unified to "-".
_DASHES: Final = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")
_SPACES: Final = re.compile(r"\s+")
_TABLE: Final = str.maketrans(CONFUSABLES)
_UPPER_TABLE: Final = str.maketrans(UPPERCASE_CONFUSABLES)
# Idempotence guard: a pass is repeated (rarely more than once) until it changes nothing.
_MAX_PASSES: Final = 4


def _pass(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch not in IGNORED)
    text = text.translate(_UPPER_TABLE).casefold()
    text = "".join(
        ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)
    )
    text = text.translate(_TABLE)
    for pair, single in SEQUENCE_CONFUSABLES:
        text = text.replace(pair, single)
    text = _SPACES.sub(" ", _DASHES.sub("-", text)).strip()
    return unicodedata.normalize("NFC", text)


def skeleton(name: str) -> str:
    """The form two confusable names share (see the module docstring)."""
    out = _pass(name)
    for _ in range(_MAX_PASSES):
        again = _pass(out)
        if again == out:
            break
        out = again
    return out


def confusable(a: str, b: str) -> bool:
    return skeleton(a) == skeleton(b)
