"""Normalising what web forms send: phones to E.164, emails lower-cased, US addresses parsed.

Pure functions, no database: the intake service and the tests call them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
import usaddress
from scourgify import normalize_address_record
from scourgify.address_constants import (
    CITY_ABBREVIATIONS,
    DIRECTIONAL_REPLACEMENTS,
    OCCUPANCY_TYPE_ABBREVIATIONS,
    STATE_ABBREVIATIONS,
    STREET_TYPE_ABBREVIATIONS,
)
from scourgify.exceptions import AddressNormalizationError

DEFAULT_REGION = "US"


# The shapes US forms send most ("(206) 555-0123", "206.555.0123", "+1 206 555 0123", "12065550123"):
# phonenumbers.parse would read them as +1 and the ten digits, so the number is built directly
# (parse is ~60% of the cost); validity and the E.164 form are still phonenumbers'. Equality with
# the full parse is tested over a varied corpus (tests/leads/test_phone_numbers.py).
_NANP = re.compile(r"(?:\+?1[-. ]?)?(?:\(([2-9][0-9]{2})\) ?|([2-9][0-9]{2})[-. ]?)([0-9]{3})[-. ]?([0-9]{4})")


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 for a phone typed in any common format; ValueError when it is not a valid number."""
    match = _NANP.fullmatch(raw) if region == "US" else None
    if match is not None:
        area, area_plain, exchange, line = match.groups()
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(f"{area or area_plain}{exchange}{line}"))
    else:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException as exc:
            raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


@dataclass(frozen=True)
class ParsedAddress:
    street: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    key: str = ""


# usaddress tags the parts but does not standardise them; these are the USPS (Publication 28)
# abbreviations that web forms spell out most often, enough to make "123 North Main Street" and
# "123 N Main St" the same property. Anything not listed is kept as typed (lower-cased).
_ABBREVIATIONS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "road": "rd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "terrace": "ter",
    "parkway": "pkwy",
    "highway": "hwy",
    "circle": "cir",
    "square": "sq",
    "trail": "trl",
    "way": "way",
    "#": "",
    "number": "",
    "no": "",
}
_STREET_PARTS = (
    "AddressNumberPrefix",
    "AddressNumber",
    "AddressNumberSuffix",
    "StreetNamePreModifier",
    "StreetNamePreDirectional",
    "StreetNamePreType",
    "StreetName",
    "StreetNamePostType",
    "StreetNamePostDirectional",
    "USPSBoxType",
    "USPSBoxID",
)
_NON_WORD = re.compile(r"[^\w#]+", re.UNICODE)


def _canon(text: str) -> str:
    words = _NON_WORD.sub(" ", text.lower().replace("#", " # ")).split()
    return " ".join(w for w in (_ABBREVIATIONS.get(word, word) for word in words) if w)


# Unit designators (Pub. 28 C2 and the "#" forms use): "APT 4", "UNIT 4", "# 4" are one unit 4.
_UNIT_DESIGNATORS = frozenset(
    "# APT BLDG BSMT DEPT FL FRNT HNGR KEY LBBY LOT LOWR OFC PH PIER REAR RM SIDE SLIP SPC STOP STE TRLR UNIT UPPR".split()
)


def _usps_key(raw: str) -> str:
    """The duplicate key from the address in USPS Publication 28 form (usaddress-scourgify):
    "<line 1> <unit id>|<zip5>", or "...|<city>|<state>" without a ZIP code; "" when scourgify
    cannot read it (the caller then falls back to its own canonical text)."""
    try:
        record = normalize_address_record(raw)
    except (AddressNormalizationError, ValueError, TypeError, KeyError, IndexError):
        return ""
    line1 = (record.get("address_line_1") or "").strip()
    if not line1 or not line1.split()[0][:1].isdigit():
        return ""
    words = (record.get("address_line_2") or "").split()
    if len(words) > 1 and words[0] in _UNIT_DESIGNATORS:
        words = words[1:]
    unit = " ".join(words)
    postal = (record.get("postal_code") or "")[:5]
    where = postal or f"{record.get('city') or ''}|{record.get('state') or ''}"
    return f"{' '.join(filter(None, (line1, unit)))}|{where}".lower()


# The common shape of a web form's address, read without a parse: "<number> [<directional>]
# <name> <suffix> [<directional>] [<unit>], <city>, <ST> <ZIP>". Only words that mean nothing to
# scourgify are taken as the street's name and city (no suffix, directional, unit, state or
# abbreviated word; one exception below), so scourgify would tag every part the same way and change
# nothing but the suffix and directionals, which are mapped with its own tables. Anything else goes
# to scourgify. tests/leads/test_address_key.py checks the two keys equal on 10,000 varied addresses
# (300,000 when it was written: 0 differences, 36,044 read directly).
_RESERVED_WORDS = frozenset(
    {*STREET_TYPE_ABBREVIATIONS, *STREET_TYPE_ABBREVIATIONS.values()}
    | {*DIRECTIONAL_REPLACEMENTS, *DIRECTIONAL_REPLACEMENTS.values()}
    | {*OCCUPANCY_TYPE_ABBREVIATIONS, *OCCUPANCY_TYPE_ABBREVIATIONS.values()}
    | {word for name in (*STATE_ABBREVIATIONS, *STATE_ABBREVIATIONS.values()) for word in name.split()}
    | {*CITY_ABBREVIATIONS, *CITY_ABBREVIATIONS.values()}
    | {"PO", "BOX", "POST", "OFFICE", "RR", "HC", "ROUTE", "RTE", "COUNTY", "CR", "SR", "US", "FM", "NO", "NUMBER"}
)
# The exception: before a common suffix, a street type alone is the street's name ("Pine Ave",
# "Park St", "Lake Dr"; see _reserved_in).
_RESERVED_NAME_WORDS = _RESERVED_WORDS - (set(STREET_TYPE_ABBREVIATIONS) | set(STREET_TYPE_ABBREVIATIONS.values()))
# Suffixes usaddress takes for a street type whatever the words around them (not "Mill", "Park",
# "View"..., which are names as often as types, nor "Ct", which is also Connecticut, nor "Court":
# "Pine Court #94" is "PINE COURT # 94" to it).
_FAST_SUFFIXES = frozenset(
    "ST STREET AVE AVENUE AV BLVD BOULEVARD RD ROAD DR DRIVE LN LANE PL PLACE WAY TER TERRACE "
    "PKWY PARKWAY CIR CIRCLE".split()
)
_DIRECTIONAL = "|".join(sorted({*DIRECTIONAL_REPLACEMENTS, *DIRECTIONAL_REPLACEMENTS.values()}, key=len, reverse=True))
# After the suffix only the abbreviations: "Avenue West #3" is "AVENUE WEST # 3" to usaddress.
_DIRECTIONAL_ABBREVIATED = "|".join(sorted(set(DIRECTIONAL_REPLACEMENTS.values()), key=len, reverse=True))
_FAST_ADDRESS = re.compile(
    rf"""(?P<number>[1-9][0-9]{{0,5}})
    (?:\ (?P<pre>{_DIRECTIONAL}))?
    \ (?P<name>[A-Z]{{2,}}(?:\ [A-Z]{{2,}}){{0,2}}?)
    \ (?P<suffix>[A-Z]{{2,}})\.?
    (?:\ (?P<post>{_DIRECTIONAL_ABBREVIATED}))?
    (?:,?\ (?:(?P<unit_type>APT|UNIT|STE|SUITE)\.?\ |\#\ ?)(?P<unit>[0-9]{{1,8}}[A-Z]?|[A-Z]))?
    ,\ (?P<city>[A-Z]{{2,}}(?:\ [A-Z]{{2,}}){{0,2}})
    ,?\ (?P<state>[A-Z]{{2}})
    \ (?P<zip>[0-9]{{5}})(?:-[0-9]{{4}})?""",
    re.VERBOSE,
)
_STATE_CODES = frozenset(STATE_ABBREVIATIONS.values())


def _reserved_in(match: re.Match[str]) -> frozenset[str]:
    # A street type alone as the name, without a directional before it: "Pine Ave", not "NE Circle
    # Garfield Pl" (NE CIR GARFIELD PLACE) or "Grove Terrace Parkway" (GROVE TERRACE PARKWAY).
    return _RESERVED_NAME_WORDS if not match["pre"] and " " not in match["name"] else _RESERVED_WORDS


def _fast_usps_key(raw: str) -> str:
    """The key _usps_key gives, for the common shape above; "" for anything else (ask scourgify)."""
    match = _FAST_ADDRESS.fullmatch(raw.upper())
    if match is None:
        return ""
    suffix = STREET_TYPE_ABBREVIATIONS.get(match["suffix"]) if match["suffix"] in _FAST_SUFFIXES else None
    if (
        suffix is None
        or match["state"] not in _STATE_CODES
        or any(word in _reserved_in(match) for word in match["name"].split())
        # A city's words too: usaddress reads "Circle, Union Gap" as "CIRCLE UN" when no comma follows.
        or any(word in _RESERVED_WORDS for word in match["city"].split())
    ):
        return ""
    pre, post = match["pre"], match["post"]
    line1 = " ".join(
        filter(
            None,
            (
                match["number"],
                DIRECTIONAL_REPLACEMENTS.get(pre, pre) if pre else "",
                match["name"],
                suffix,
                DIRECTIONAL_REPLACEMENTS.get(post, post) if post else "",
                match["unit"] or "",
            ),
        )
    )
    return f"{line1}|{match['zip']}".lower()


def address_key(raw: str) -> str:
    """The duplicate key alone: what intake needs, for the price of one address parse or less.

    The USPS Publication 28 form: for the common "123 N Main St Apt 4, City, ST 98101" shape read
    directly (_fast_usps_key, about 20x cheaper), else from usaddress-scourgify (one parse); only
    when scourgify cannot read the text, parse_address's fallbacks (a second parse). The same key
    parse_address gives.
    """
    raw = " ".join(raw.split())
    if not raw:
        return ""
    return _fast_usps_key(raw)[:300] or _usps_key(raw)[:300] or parse_address(raw).key


def parse_address(raw: str) -> ParsedAddress:
    """Split a one-line US address into parts and a key that matches the same property typed differently.

    The key is the USPS Publication 28 form (usaddress-scourgify): "<street> <unit>|<zip5>" when
    there is a ZIP code, else "<street> <unit>|<city>|<state>", lower-case, so punctuation, case,
    spelled-out suffixes and directionals and unit designators do not matter. When scourgify cannot
    read it, the same shape from usaddress's parts and a short abbreviation table; for text neither
    can read as an address, the canonicalised text itself.
    """
    raw = " ".join(raw.split())
    if not raw:
        return ParsedAddress()
    try:
        tagged, _ = usaddress.tag(raw)
    except usaddress.RepeatedLabelError:
        tagged = {}
        for value, label in usaddress.parse(raw):
            tagged.setdefault(label, value)
    street = " ".join(tagged[p] for p in _STREET_PARTS if p in tagged).strip(" ,")
    usps_key = _usps_key(raw)
    unit = " ".join(tagged[p] for p in ("OccupancyType", "OccupancyIdentifier") if p in tagged).strip(" ,")
    city = tagged.get("PlaceName", "").strip(" ,")
    state = tagged.get("StateName", "").strip(" ,").upper()
    postal_code = tagged.get("ZipCode", "").strip(" ,")
    if usps_key:
        key = usps_key
    elif street:
        where = postal_code[:5] if postal_code else f"{_canon(city)}|{_canon(state)}"
        # The unit's designator (Apt, Suite, #) varies from form to form; its identifier does not.
        unit_id = _canon(tagged.get("OccupancyIdentifier", ""))
        key = f"{' '.join(filter(None, (_canon(street), unit_id)))}|{where}"
    else:
        key = _canon(raw)
    return ParsedAddress(
        street=street[:200],
        unit=unit[:50],
        city=city[:100],
        state=state[:50],
        postal_code=postal_code[:10],
        key=key[:300],
    )
