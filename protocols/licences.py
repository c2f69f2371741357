"""Licence statements of projects (docs/protocol.md §3.3): the syntax, and the common ids.

Validity is the syntax alone (context-free and stable): an SPDX licence *expression* (SPDX
2.3, Annex D: ids joined by AND / OR / WITH, parentheses), the exact text "all rights
reserved", or "" (no licence stated). Whether an id is on the SPDX list is a *view* matter
(the list grows; validity must not): `is_known_licence` says whether every id of a statement
is one this release lists (`KNOWN_LICENCES`), and `licence_suggestions` what a form offers.

Grammar (operators upper case, tokens separated by spaces, parentheses need none):

    expression = and-expr *( "OR" and-expr )
    and-expr   = with-expr *( "AND" with-expr )
    with-expr  = id [ "WITH" id ] / "(" expression ")"
    id         = 1*( ALPHA / DIGIT / "." / "+" / "-" )          ; not AND, OR, WITH
               / [ "DocumentRef-" idchars ":" ] "LicenseRef-" idchars
"""

from __future__ import annotations

import re

ALL_RIGHTS_RESERVED = "all rights reserved"
NO_LICENCE = ""
OPERATORS = ("AND", "OR", "WITH")
_CHARS = re.compile(r"[A-Za-z0-9.+:() -]*")
_TOKENS = re.compile(r"[()]|[^ ()]+")
_ID = re.compile(r"[A-Za-z0-9.+-]+|(?:DocumentRef-[A-Za-z0-9.+-]+:)?LicenseRef-[A-Za-z0-9.+-]+")

# Common SPDX licence ids for projects of labs (open hardware, documentation, software, data),
# suggested first; and the common exceptions (after WITH).
KNOWN_LICENCES: dict[str, str] = {
    "CC-BY-4.0": "Creative Commons Attribution 4.0",
    "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0",
    "CC0-1.0": "Creative Commons Zero 1.0 (public domain)",
    "CERN-OHL-S-2.0": "CERN Open Hardware Licence v2, strongly reciprocal",
    "CERN-OHL-W-2.0": "CERN Open Hardware Licence v2, weakly reciprocal",
    "CERN-OHL-P-2.0": "CERN Open Hardware Licence v2, permissive",
    "CC-BY-NC-4.0": "Creative Commons Attribution-NonCommercial 4.0",
    "CC-BY-NC-SA-4.0": "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
    "CC-BY-ND-4.0": "Creative Commons Attribution-NoDerivatives 4.0",
    "CC-BY-NC-ND-4.0": "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0",
    "CC-BY-3.0": "Creative Commons Attribution 3.0",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0",
    "TAPR-OHL-1.0": "TAPR Open Hardware License 1.0",
    "SHL-2.1": "Solderpad Hardware License 2.1",
    "MIT": "MIT License",
    "Apache-2.0": "Apache License 2.0",
    "BSD-2-Clause": "BSD 2-Clause License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "0BSD": "BSD Zero Clause License",
    "ISC": "ISC License",
    "MPL-2.0": "Mozilla Public License 2.0",
    "GPL-2.0-only": "GNU General Public License v2.0 only",
    "GPL-2.0-or-later": "GNU General Public License v2.0 or later",
    "GPL-3.0-only": "GNU General Public License v3.0 only",
    "GPL-3.0-or-later": "GNU General Public License v3.0 or later",
    "LGPL-2.1-or-later": "GNU Lesser General Public License v2.1 or later",
    "LGPL-3.0-or-later": "GNU Lesser General Public License v3.0 or later",
    "AGPL-3.0-only": "GNU Affero General Public License v3.0 only",
    "AGPL-3.0-or-later": "GNU Affero General Public License v3.0 or later",
    "EUPL-1.2": "European Union Public Licence 1.2",
    "Unlicense": "The Unlicense",
    "ODbL-1.0": "Open Data Commons Open Database License 1.0",
    "OFL-1.1": "SIL Open Font License 1.1",
}
KNOWN_EXCEPTIONS: dict[str, str] = {
    "Classpath-exception-2.0": "Classpath exception 2.0",
    "LLVM-exception": "LLVM Exception",
    "GCC-exception-3.1": "GCC Runtime Library exception 3.1",
}


class _Syntax(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _TOKENS.findall(text)
        self.pos = 0
        self.ids: list[str] = []
        self.exceptions: list[str] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _Syntax("it ends too early")
        self.pos += 1
        return tok

    def ident(self, what: str) -> str:
        tok = self.take()
        if tok in OPERATORS or tok in "()" or not _ID.fullmatch(tok):
            raise _Syntax(f"{tok!r} is not {what}")
        return tok

    def expression(self) -> None:
        self.and_expr()
        while self.peek() == "OR":
            self.pos += 1
            self.and_expr()

    def and_expr(self) -> None:
        self.with_expr()
        while self.peek() == "AND":
            self.pos += 1
            self.with_expr()

    def with_expr(self) -> None:
        if self.peek() == "(":
            self.pos += 1
            self.expression()
            if self.take() != ")":
                raise _Syntax("a '(' is not closed")
            return
        self.ids.append(self.ident("a licence id"))
        if self.peek() == "WITH":
            self.pos += 1
            self.exceptions.append(self.ident("an exception id"))


def _parse(text: str) -> _Parser:
    if not _CHARS.fullmatch(text):
        raise _Syntax("only letters, digits, '.', '+', '-', ':', parentheses and spaces")
    if text != text.strip(" "):
        raise _Syntax("no leading or trailing spaces")
    parser = _Parser(text)
    parser.expression()
    if parser.peek() is not None:
        raise _Syntax(f"{parser.peek()!r} where AND, OR or WITH was expected")
    return parser


def licence_syntax_error(text: str) -> str:
    """Why `text` is not a licence statement ("" if it is one)."""
    if text in (NO_LICENCE, ALL_RIGHTS_RESERVED):
        return ""
    try:
        _parse(text)
    except _Syntax as exc:
        return str(exc)
    return ""


def is_valid_licence(text: str) -> bool:
    return not licence_syntax_error(text)


def licence_ids(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The licence ids and exception ids a valid expression names (empty for "" and "all
    rights reserved"). ValueError if `text` is not a licence statement."""
    if text in (NO_LICENCE, ALL_RIGHTS_RESERVED):
        return (), ()
    try:
        parser = _parse(text)
    except _Syntax as exc:
        raise ValueError(f"{text!r} is not a licence: {exc}") from None
    return tuple(parser.ids), tuple(parser.exceptions)


def is_known_licence(text: str) -> bool:
    """Whether a statement names only ids this release lists ("all rights reserved" is known;
    "" and anything invalid are not). A `LicenseRef-` is a custom licence: not known."""
    if text == ALL_RIGHTS_RESERVED:
        return True
    if text == NO_LICENCE or not is_valid_licence(text):
        return False
    ids, exceptions = licence_ids(text)
    return all(i in KNOWN_LICENCES for i in ids) and all(e in KNOWN_EXCEPTIONS for e in exceptions)


def licence_suggestions(prefix: str = "") -> list[str]:
    """What an edit form offers, in this order: the known ids starting with `prefix`
    (case-insensitive), then "all rights reserved" if it matches."""
    low = prefix.lower()
    out = [i for i in KNOWN_LICENCES if i.lower().startswith(low)]
    if ALL_RIGHTS_RESERVED.startswith(low):
        out.append(ALL_RIGHTS_RESERVED)
    return out


def licence_label(text: str) -> str:
    """A human name for a single known id (the id itself otherwise)."""
    return KNOWN_LICENCES.get(text, text)
