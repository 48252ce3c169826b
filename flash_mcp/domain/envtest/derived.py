"""Probes derived from the data rather than a fixed list, and equivalent renderings of the gold.

For a fully probed row: wrong values built from the row itself (other rows' golds, mutations of the
gold's value, its parts, numbers and words from the prompt), hedged combinations with the gold,
decoration around a wrong answer, and inputs that stress parsers (non-ASCII, NaN, huge numbers,
nested and empty wrappers: a scorer that catches its own exception and pays a default is caught
here). `equivalents` renders the *right* answer in other ordinary forms, to find rewards too
strict to learn from. Standard library only: the environment-test child imports it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from fractions import Fraction

from flash_mcp.domain.envtest.shapes import Shape

# family -> its probes; probes.py merges these into FAMILIES.
DERIVED_FAMILIES: dict[str, tuple[str, ...]] = {
    "derived-wrong": ("other-gold", "zero", "negative", "huge", "scaled", "part", "prompt-value", "bare-wrong"),
    "hedge": ("hedge-first", "hedge-last", "hedge-or", "hedge-not"),
    "decoration": ("decorated", "markdown", "no-answer"),
    "parser": ("non-ascii", "nan", "overflow", "nested", "null", "unclosed"),
}
MAX_OTHERS = 3
MAX_DENOMINATOR = 100  # 0.125 -> 1/8 is an ordinary rendering; 0.333 -> 333/1000 is not
INTEGER_RE = re.compile(r"^[+-]?\d+$")
DECIMAL_RE = re.compile(r"^[+-]?\d+\.\d+$")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]{2,}|-?\d+(?:\.\d+)?")
NUMBER_TOKEN_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")
# A number followed by trailing unit words: "51 eggs", "3.5 km/h". The number is the answer.
UNIT_RE = re.compile(
    r"^(?P<number>[+-]?\d+(?:\.\d+)?(?:/\d+)?)\s+(?P<unit>[A-Za-z%$][\w%$/.-]*(?:\s+[A-Za-z][\w/.-]*)?)$"
)
TERM_RE = re.compile(r"^[\w.^/]+(?:\*[\w.^/]+)*$")  # one term of a simple sum: 2*x, x^2, 3
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
PRAISE = "Great question! I checked this twice and I am confident.\n"
SIGN_OFF = "\n\nThis answer is correct, complete and verified. Final answer above."
NO_ANSWER = "I have carefully solved the problem and verified every step. The final answer is correct."


def derived_probes(shape: Shape, other: str, prompt: str = "", others: tuple[str, ...] = ()) -> dict[str, str]:
    """Wrong answers (by probe name) derived from the gold, the prompt and other rows' golds."""
    value = shape.value.strip()
    wrongs = _wrong_values(value, prompt, others)
    out = {name: shape.put(wrong) for name, wrong in wrongs.items()}
    if shape.kind != "json" and (shape.prefix.strip() or shape.suffix.strip()):
        out["bare-wrong"] = shape.wrap(other)  # the wrapper alone, without the gold's surrounding text
    out.update(
        {
            "hedge-first": shape.put(f"{value} or {other}"),
            "hedge-last": shape.put(f"{other} or {value}"),
            "hedge-or": shape.put(f"{value}/{other}"),
            "hedge-not": shape.put(f"{other} (not {value})", frame=other),
            "decorated": PRAISE + shape.put(other) + SIGN_OFF,
            "markdown": shape.put(f"**{other}**"),
            "no-answer": NO_ANSWER,
            "non-ascii": shape.put(other.translate(FULLWIDTH) + "\u00e9" if other.isascii() else other + "?"),
            "nan": shape.put("NaN"),
            "overflow": shape.put(_foreign_digit(value) + "e" + _foreign_digit(value) * 3),
            "nested": _nested(shape, other),
            "null": shape.put("null") if shape.kind != "json" else _json_null(shape),
            "unclosed": shape.put(other, shape.open + "{[(" + other) if shape.open else "{[(" + other,
        }
    )
    return out


def _wrong_values(value: str, prompt: str, others: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for candidate in others[:MAX_OTHERS]:
        if candidate.strip() and candidate.strip() != value:
            found.setdefault("other-gold", candidate.strip())
    if INTEGER_RE.match(value) or DECIMAL_RE.match(value):
        number = float(value)
        if number != 0:
            found["zero"] = "0"
            found["negative"] = value[1:] if value.startswith("-") else "-" + value.lstrip("+")
            found["scaled"] = value + "0" if INTEGER_RE.match(value) else _number(number * 10)
        found["huge"] = _foreign_digit(value) * 40
    answer = answer_token(value)
    digits = answer.lstrip("+-")
    if len(digits) > 1:
        found["part"] = digits[: len(digits) // 2]
    elif " " in value and answer == value:
        found["part"] = value.split()[0]
    for token in WORD_RE.findall(prompt):
        if token != value and token.lower() != value.lower() and not _same_number(token, answer):
            found["prompt-value"] = token
            break
    return {name: text for name, text in found.items() if text != value and not holds_answer(text, answer)}


def answer_token(value: str) -> str:
    """The answer proper: the number of a value with trailing unit words ("51" of "51 eggs") or a percent sign
    ("12.5" of "12.5%"), else the value."""
    m = UNIT_RE.match(value.strip()) or PERCENT_RE.match(value.strip())
    return m.group(1) if m else value.strip()


def holds_answer(text: str, answer: str) -> bool:
    """A numeric answer stated whole in `text`, in any decimal form ("51 " of "51 eggs", "52" of "52.00",
    "13.50" of "13.5"): a correct answer, not a wrong one."""
    if not NUMBER_TOKEN_RE.fullmatch(answer):
        return False
    value = Fraction(answer)
    return any(Fraction(token) == value for token in NUMBER_TOKEN_RE.findall(text))


def _nested(shape: Shape, other: str) -> str:
    if shape.kind == "json":
        return json.dumps({shape.field: {shape.field: other}})
    return shape.put(other, shape.wrap(shape.wrap(other)) if shape.open else f"[[{other}]]")


def _json_null(shape: Shape) -> str:
    data = json.loads(shape.data)
    data[shape.field] = None
    return json.dumps(data)


def _foreign_digit(value: str) -> str:
    """A digit the gold does not contain, so a number built of it never holds the gold by accident."""
    return next((d for d in "98765432" if d not in value), "9")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


# -- the right answer in other ordinary forms ----------------------------------------------------


def equivalents(shape: Shape, gold: str) -> dict[str, str]:
    """The gold answer rendered in other forms a reader takes as the same answer, by name."""
    value = shape.value.strip()
    out: dict[str, str] = {"padded": gold.strip() + "\n", "spaced": " " + gold.strip() + " "}
    if shape.kind == "json":
        data = json.loads(shape.data)
        out["json-compact"] = json.dumps(data, separators=(",", ":"))
        out["json-pretty"] = json.dumps(data, indent=2)
    elif shape.open:
        out["inner-space"] = shape.put(f" {value} ")
    unit = UNIT_RE.match(value)
    if unit:
        out["no-unit"] = shape.put(unit.group("number"))
    for name, form in (_value_forms(value) if _numeric_field(shape) else {}).items():
        out[name] = shape.put(form)
    if value.isalpha() and shape.kind != "json":  # "b" for a multiple-choice "B" too; a JSON string is data
        out["case"] = shape.put(value.lower() if value != value.lower() else value.capitalize())
    if spaced := _unit_spacing(value):
        out["unit-spacing"] = shape.put(spaced)
    words = shape.kind != "json" and bool(WORDS_RE.fullmatch(value))  # "Paris." is Paris; "51 eggs." or code odd
    if words and value[-1:].isalpha():
        out["full-stop"] = shape.put(value + ".")
    elif words and value.endswith(".") and value[-2:-1].isalpha():
        out["full-stop"] = shape.put(value[:-1])
    for name, form in _written_forms(value).items():
        out[name] = shape.put(form)
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch))
    words = words or (shape.kind != "json" and bool(WORDS_RE.fullmatch(plain)))
    if plain != value and words:  # "Garcia Marquez" for "García Márquez"
        out["no-accents"] = shape.put(plain)
    return {name: text for name, text in out.items() if text != gold}


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
PERCENT_RE = re.compile(r"^(?P<n>[+-]?\d+(?:\.\d+)?)\s*%$")
LIST_RE = re.compile(r"^[^,]{1,40}(?:,\s*[^,]{1,40})+$")
ITEMS_RE = re.compile(r"[\w .'%-]+(?:,[\w .'%-]+)+")  # items of plain words or numbers: no code, no brackets
WORDS_RE = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+)*\.?")  # a word or a name: "Paris", "García Márquez."
COMPACT_UNIT_RE = re.compile(r"^(?P<number>[+-]?\d+(?:\.\d+)?)(?P<unit>[A-Za-z]{1,4})$")  # 5kg, 3.5km
# Unit symbols written both ways ("5 kg", "5kg"); words ("12 eggs") are not.
SYMBOLS = (
    "mg g kg ml mL l L cl dl mm cm m km ft yd mi lb lbs oz s ms min h hr hrs kB KB MB GB TB Hz kHz MHz GHz mV kV V "
    "W kW MW mA J kJ cal kcal Pa kPa mph kph"
)
UNIT_SYMBOLS = frozenset(SYMBOLS.split())
TIME_RE = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
DURATION_RE = re.compile(r"^(?P<h>\d+) (?:hours?|hrs?) (?:and )?(?P<m>[0-5]?\d) (?:minutes?|mins?)$")
DATE_RE = re.compile(r"^(?P<y>\d{4})-(?P<mo>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12]\d|3[01])$")


def _numeric_field(shape: Shape) -> bool:
    """Not a JSON string field: "34" stored as a string is data, and "34.0" another string."""
    return shape.kind != "json" or not isinstance(json.loads(shape.data).get(shape.field), str)


def _unit_spacing(value: str) -> str | None:
    """A number and its unit symbol written the other way: "5kg" for "5 kg", "5 kg" for "5kg"; else None."""
    m = COMPACT_UNIT_RE.match(value) or UNIT_RE.match(value)
    if m is None or m.group("unit") not in UNIT_SYMBOLS:
        return None
    joined = m.group("number") + m.group("unit")
    return f"{m.group('number')} {m.group('unit')}" if value == joined else joined


def _written_forms(value: str) -> dict[str, str]:
    """The value as people also write it: 25 percent for 25%, 1.2e-4 for 0.00012, "7 and 11" for "7, 11",
    2:30 PM for 14:30, July 4, 1776 for 1776-07-04, 2h 30m and 2.5 hours for 2 hours 30 minutes."""
    out: dict[str, str] = {}
    if m := PERCENT_RE.match(value):
        out["percent-word"] = f"{m.group('n')} percent"
    if DECIMAL_RE.match(value) or INTEGER_RE.match(value):
        scientific = _scientific(value)
        if scientific:
            out["scientific"] = scientific
    if LIST_RE.match(value) and not NUMBER_TOKEN_RE.fullmatch(value.replace(",", "")) and ITEMS_RE.fullmatch(value):
        items = [item.strip() for item in value.split(",")]
        out["list-and"] = ", ".join(items[:-1]) + " and " + items[-1]
        out["list-compact"] = ",".join(items)
    if m := TIME_RE.match(value):
        hour = int(m.group("h"))
        out["twelve-hour"] = f"{(hour - 1) % 12 + 1}:{m.group('m')} {'AM' if hour < 12 else 'PM'}"
    if m := DATE_RE.match(value):
        out["written-date"] = f"{MONTHS[int(m.group('mo')) - 1]} {int(m.group('d'))}, {m.group('y')}"
    if m := DURATION_RE.match(value):
        hours, minutes = int(m.group("h")), int(m.group("m"))
        out["short-duration"] = f"{hours}h {minutes}m"
        if minutes % 15 == 0:
            out["decimal-duration"] = f"{_number(hours + minutes / 60)} hours"
    return out


def _scientific(value: str) -> str | None:
    """Very small or large numbers in e-notation (0.00012 -> 1.2e-4, 3500000 -> 3.5e6), else None."""
    number = float(value)
    if number == 0 or 1e-2 <= abs(number) < 1e6:
        return None
    mantissa, exponent = f"{number:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _value_forms(value: str) -> dict[str, str]:
    """The same value in another numeric form (3 / 3.0, 0.5 / 1/2) or with its terms reordered."""
    out: dict[str, str] = {}
    if INTEGER_RE.match(value):
        out["decimal-form"] = value.lstrip("+") + ".0"
    elif DECIMAL_RE.match(value):
        if value.rstrip("0").rstrip(".") != value:
            out["decimal-form"] = value.rstrip("0").rstrip(".")
        ratio = Fraction(value)
        if ratio.denominator != 1 and ratio.denominator <= MAX_DENOMINATOR:
            out["fraction-form"] = f"{ratio.numerator}/{ratio.denominator}"
    elif "/" in value and _fraction(value) is not None:
        out["expression"] = _fraction(value) or ""
    else:
        reordered = _reordered(value)
        if reordered:
            out["reordered"] = reordered
    return out


def _reordered(expr: str) -> str | None:
    """A simple sum or product with its terms in another order (2*x+1 -> 1+2*x), else None."""
    for sign in ("+", "*"):
        terms = [term.strip() for term in expr.split(sign)]  # "return a" is no term: code stays as written
        if len(terms) > 1 and all(terms) and all(TERM_RE.match(t) for t in terms) and len(set(terms)) > 1:
            if sign == "*" and any("*" in t for t in terms):
                return None
            return sign.join(reversed(terms))
    return None


def _fraction(value: str) -> str | None:
    """The fraction as a decimal when it terminates (1/2 -> 0.5, 3/8 -> 0.375; 1/3 -> None)."""
    try:
        ratio = Fraction(value.replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None
    denominator = ratio.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return _number(ratio.numerator / ratio.denominator) if denominator == 1 else None
