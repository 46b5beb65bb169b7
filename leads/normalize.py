"""Normalising what web forms send: phones to E.164, emails lower-cased, US addresses parsed.

Pure functions, no database: the intake service and the tests call them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
import usaddress
from scourgify import normalize_address_record
from scourgify.exceptions import AddressNormalizationError

DEFAULT_REGION = "US"


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 for a phone typed in any common format; ValueError when it is not a valid number."""
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


def address_key(raw: str) -> str:
    """The duplicate key alone: what intake needs, for the price of one address parse.

    The USPS Publication 28 form (usaddress-scourgify, which parses once); only when scourgify cannot
    read the text, parse_address's fallbacks (a second parse). The same key parse_address gives.
    """
    raw = " ".join(raw.split())
    if not raw:
        return ""
    return _usps_key(raw)[:300] or parse_address(raw).key


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
