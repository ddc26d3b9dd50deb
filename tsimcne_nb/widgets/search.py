"""Search the explorer's points with a small query language, parsed safely (never ``eval``).

A query is a boolean combination of conditions on the explorer's columns: ``label``,
``tag``, ``index``, ``new``, every metadata column and every column added with
:meth:`~tsimcne_nb.widgets.explorer.Explorer.add_column` (e.g. QC scores)::

    blur > 2
    label == neutrophil and sharpness <= 0.1
    tag:keep or (label != "new" and not batch == b1)
    eosinophil                      # a bare word: that label, or that tag

Conditions: ``column OP value`` with OP one of ``== != < <= > >=`` (``=`` means ``==``),
and ``column:value`` (the same as ``column == value``).  ``tag == x`` means "carries the
tag x" (a point can carry several).  Values are numbers, bare words or quoted strings;
text comparisons ignore case.  ``and`` binds tighter than ``or``; ``not`` and parentheses
work as usual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError

__all__ = ["evaluate_query", "parse_query", "search_mask"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<op><=|>=|==|!=|<|>|=|:)
    | (?P<lpar>\()
    | (?P<rpar>\))
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<tick>`[^`]*`)
    | (?P<word>[^\s()<>=!:"'`]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}
_OPS = {"==", "!=", "<", "<=", ">", ">=", "=", ":"}

#: a parsed query: nested tuples ("and"|"or", a, b), ("not", a), ("cmp", column, op, value),
#: ("word", text)
Node = tuple


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConfigError(
                f"cannot read the search at {text[pos:pos + 12]!r} (position {pos}); write "
                "conditions such as `blur > 2`, `label == neutrophil` or `tag:keep`."
            )
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "tick":
            kind, value = "name", value[1:-1]
        elif kind == "word" and value.lower() in _KEYWORDS:
            kind, value = value.lower(), value.lower()
        out.append((kind, value))
        pos = m.end()
    return out


def parse_query(text: str) -> Node:
    """Parse ``text`` into a small tree (see the module docstring for the language).

    Parameters
    ----------
    text : str
        The query.

    Returns
    -------
    tuple
        The parsed tree; pass it to :func:`evaluate_query`.

    Raises
    ------
    ConfigError
        The query is empty or does not follow the language; the message says where.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the search is empty: type a condition such as `blur > 2` or a label.")
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(toks):
            raise ConfigError(f"the search {text!r} ends too early: a condition is missing.")
        pos += 1
        return toks[pos - 1]

    def expr() -> Node:
        node = conj()
        while (t := peek()) is not None and t[0] == "or":
            take()
            node = ("or", node, conj())
        return node

    def conj() -> Node:
        node = neg()
        while (t := peek()) is not None and t[0] == "and":
            take()
            node = ("and", node, neg())
        return node

    def neg() -> Node:
        t = peek()
        if t is not None and t[0] == "not":
            take()
            return ("not", neg())
        return atom()

    def atom() -> Node:
        kind, value = take()
        if kind == "lpar":
            node = expr()
            t = peek()
            if t is None or t[0] != "rpar":
                raise ConfigError(f"unbalanced parentheses in the search {text!r}.")
            take()
            return node
        if kind not in ("word", "str", "name"):
            raise ConfigError(
                f"unexpected {value!r} in the search {text!r}: a condition starts with a column "
                "name or a word."
            )
        t = peek()
        if t is not None and t[0] == "op":
            op = take()[1]
            vkind, v = take()
            if vkind not in ("word", "str", "name"):
                raise ConfigError(f"{value} {op} needs a value (a number or a word); got {v!r}.")
            return ("cmp", value, "==" if op in ("=", ":") else op, v)
        if kind == "name":
            raise ConfigError(f"`{value}` needs a comparison, e.g. `{value}` > 2.")
        return ("word", value)

    tree = expr()
    if pos != len(toks):
        raise ConfigError(f"unexpected {toks[pos][1]!r} in the search {text!r}.")
    return tree


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(col: pd.Series, op: str, value: str, name: str) -> np.ndarray:
    num = _as_number(value)
    if pd.api.types.is_bool_dtype(col):
        truth = value.lower() in ("true", "1", "yes")
        if value.lower() not in ("true", "false", "1", "0", "yes", "no") or op not in ("==", "!="):
            raise ConfigError(f"{name} is true/false: compare it with == true or == false.")
        out = col.to_numpy(bool) == truth
        return out if op == "==" else ~out
    if pd.api.types.is_numeric_dtype(col):
        if num is None:
            raise ConfigError(f"{name} is numeric; compare it with a number, not {value!r}.")
        v = col.to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            res = {
                "==": v == num, "!=": v != num, "<": v < num,
                "<=": v <= num, ">": v > num, ">=": v >= num,
            }[op]
        return np.asarray(res, bool) & ~np.isnan(v) if op != "!=" else np.asarray(res, bool)
    text = col.astype(str).str.lower().to_numpy()
    if op == "==":
        return text == value.lower()
    if op == "!=":
        return text != value.lower()
    raise ConfigError(f"{name} holds text: use == or != (got {op}).")


def evaluate_query(
    tree: Node,
    columns: Mapping[str, pd.Series],
    tags: Mapping[str, np.ndarray],
    n: int,
) -> np.ndarray:
    """Boolean mask of the ``n`` points that match a parsed query.

    Parameters
    ----------
    tree : tuple
        From :func:`parse_query`.
    columns : mapping of str to pandas.Series
        The searchable columns, each of length ``n`` (names are matched ignoring case).
    tags : mapping of str to numpy.ndarray
        Tag name -> indices of the points carrying it.
    n : int
        Number of points.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` boolean mask.
    """
    lower = {str(k).lower(): k for k in columns}

    def tag_mask(name: str) -> np.ndarray | None:
        for t, idx in tags.items():
            if t.lower() == name.lower():
                m = np.zeros(n, bool)
                m[np.asarray(idx, np.int64)] = True
                return m
        return None

    def column(name: str) -> pd.Series:
        key = lower.get(name.lower())
        if key is None:
            raise ConfigError(
                f"no column named {name!r} to search; searchable: "
                f"{', '.join(['tag', *map(str, columns)])}."
            )
        return columns[key]

    def ev(node: Node) -> np.ndarray:
        head = node[0]
        if head == "and":
            return ev(node[1]) & ev(node[2])
        if head == "or":
            return ev(node[1]) | ev(node[2])
        if head == "not":
            return ~ev(node[1])
        if head == "word":
            word = node[1]
            hits = np.zeros(n, bool)
            found = False
            if "label" in lower:
                lab = column("label").astype(str).str.lower().to_numpy()
                found = bool((lab == word.lower()).any())
                hits |= lab == word.lower()
            tm = tag_mask(word)
            if tm is not None:
                hits |= tm
                found = True
            if not found:
                raise ConfigError(
                    f"{word!r} is neither a label nor a tag; write a condition such as "
                    f"`{word} > 2` for a column, or pick a label/tag that exists."
                )
            return hits
        _, name, op, value = node
        if name.lower() in ("tag", "tags"):
            if op not in ("==", "!="):
                raise ConfigError("tags are names: use tag == NAME, tag != NAME or tag:NAME.")
            tm = tag_mask(value)
            if tm is None:
                tm = np.zeros(n, bool)  # an unknown tag matches nothing (it may be made later)
            return tm if op == "==" else ~tm
        return _compare(column(name), op, value, name)

    return np.asarray(ev(tree), bool)


def search_mask(
    text: str,
    columns: Mapping[str, pd.Series],
    tags: Mapping[str, np.ndarray],
    n: int,
) -> np.ndarray:
    """Parse and evaluate in one call (see :func:`parse_query` and :func:`evaluate_query`).

    Parameters
    ----------
    text : str
        The query (see :func:`parse_query`).
    columns : mapping of str to pandas.Series
        Columns the query may name, each with ``n`` rows.
    tags : mapping of str to numpy.ndarray
        Boolean ``(n,)`` mask per tag name.
    n : int
        Number of points.
    """
    return evaluate_query(parse_query(text), columns, tags, n)
