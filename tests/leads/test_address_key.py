"""The intake's duplicate key without a parse (leads.normalize._fast_usps_key) is the key scourgify
gives, wherever it answers: proved over a large corpus of varied, machine-made addresses."""

from __future__ import annotations

import random

import pytest

from leads.normalize import _fast_usps_key, _usps_key, address_key, parse_address

_NAMES = (
    "Main Pine Oak Maple Cedar Elm Park Lake Hill Forest Church Mill Spring Washington Lincoln Jefferson Center "
    "Broadway Sunset Ridge View Meadow Highland River Bay Harbor Union Market College School Railroad Depot Grand "
    "Summit Valley First Second Third Tenth King Queen Duke Madison Adams Jackson Monroe Wilson Taylor Garfield "
    "Cleveland Wall Water Front Bridge Dock Bank Canal Latona Aurora Rainier Fremont Ballard Magnolia Dexter Stone "
    "Way Court Place Circle Terrace Square Plaza Loop Point Heights Grove Gardens Crossing Commons Trail Run "
    "North South East West Northeast Apartment Suite Unit Box Route County Saint Mount Fort Virginia Carolina "
    "Dakota York Jersey Mexico Island Green Cherry Old New Little Big Red White Black Blue Golden Silver"
).split()
_MULTI = tuple(
    (
        "Martin Luther King;Old Mill;Green Valley;Cherry Hill;Queen Anne;Saint Paul;St Paul;Mt Vernon;"
        "Post Office;County Line;Lake Forest;Twin Oaks;Red Oak;Park View;1st;2nd;3rd;42nd;101st;"
        "Lake City;La Salle;El Camino Real;Van Ness;Mc Arthur"
    ).split(";")
)
_SUFFIXES = tuple(
    (
        "St Street Ave Avenue Av Blvd Boulevard Rd Road Dr Drive Ln Lane Ct Court Pl Place Way Ter Terrace "
        "Pkwy Parkway Hwy Highway Cir Circle Sq Trl Trail Loop Row Walk Run Pass Path Pike Aly Alley Xing "
        "Crossing Plz Plaza Ctr Center Hts Heights Grv Grove Pt Point Mall Cv Cove Bnd Bend Expy Fwy Hl Hill "
        "Holw Is Jct Knl Lk Lndg Mdw Mdws Mnr Orch Oval Park Pnes Rdg Spg Sta Strm Vw Vis Vly Wds Wy Wls "
        "Bluff Brg Brk Cres Crst Est Ests Fls Frk Gdns"
    ).split()
)
_DIRECTIONS = tuple(("N S E W NE NW SE SW North South East West Northeast Southwest N. S.E. N.W.").split())
_UNITS = tuple(
    (
        "#{n};# {n};Apt {n};Apt. {n};APT {n};Unit {n};Ste {n};Suite {n};Apt #{n};No. {n};Apartment {n};"
        "Fl {n};Bldg {n};Unit {a};#{a};Apt {n}{a};Lot {n};Rm {n};Spc {n};{n};Trlr {n};#{n}-{n};Ph {n}"
    ).split(";")
)
_CITIES = tuple(
    (
        "Seattle;Portland;San Francisco;Salt Lake City;New York;Fort Worth;St. Louis;Saint Paul;"
        "Park City;Lake Forest Park;West Palm Beach;North Bend;Mountlake Terrace;Bellevue;Spokane Valley;"
        "Boise;Austin;Las Vegas;Mount Vernon;Ft Myers;Kent;Federal Way;University Place;Lakewood;"
        "Sun City;Virginia Beach;Washington;Apple Valley;Oak Harbor;Union Gap;Port Orchard;Boston;Denver;"
        "Mercer Island;Pinehurst;Avenel"
    ).split(";")
)
_STATES = tuple(
    ("WA OR CA NY TX MO MN UT FL ID NV VA CO MA IN OK ME DE CT PA Washington California New York wa Wa ZZ XX").split()
)


def _case(rng: random.Random, text: str) -> str:
    return rng.choice((text, text.upper(), text.lower(), text.title()))


_COMMON_NAMES = (
    "Main Pine Oak Maple Cedar Elm Washington Lincoln Jefferson Sunset Highland Madison Adams Jackson Monroe "
    "Wilson Taylor Garfield Latona Aurora Rainier Fremont Ballard Magnolia Dexter Franklin Walnut Cherry Willow "
    "Chestnut Dogwood Laurel Holly Birch Spruce Hickory Locust Juniper Aspen Evergreen Greenwood Phinney Roosevelt "
    "Pine Park Lake Hill Mill Spring Forest Grove Ridge Valley View Harbor Bay Station Creek Glen Meadow Court"
).split()
_COMMON_SUFFIXES = tuple(
    ("St Street Ave Avenue Blvd Rd Road Dr Drive Ln Lane Ct Court Pl Place Way Ter Pkwy Cir Circle").split()
)
_COMMON_UNITS = tuple(("#{n};# {n};Apt {n};Apt. {n};Unit {n};Ste {n};Suite {n};Apt {n}{a};Unit {a}").split(";"))


def _common_address(rng: random.Random) -> str:
    """What most forms send: "1234 N Maple Ave Apt 5, Seattle, WA 98101", in any case."""
    words = [str(rng.randint(1, 99999))]
    if rng.random() < 0.2:
        words.append(rng.choice(_DIRECTIONS))
    words += rng.sample(_COMMON_NAMES, rng.choice((1, 1, 1, 2)))
    words.append(rng.choice(_COMMON_SUFFIXES) + ("." if rng.random() < 0.1 else ""))
    if rng.random() < 0.15:
        words.append(rng.choice(_DIRECTIONS))
    if rng.random() < 0.35:
        n = str(rng.choice((rng.randint(1, 99), rng.randint(100, 9999), rng.randint(1000000, 99999999))))
        words.append(rng.choice(("", ",")) + rng.choice(_COMMON_UNITS).format(n=n, a=rng.choice("ABCDXZ")))
    zip_code = rng.choice((f"{rng.randint(501, 99950):05d}", f"{rng.randint(10000, 99950)}-{rng.randint(0, 9999):04d}"))
    city = rng.choice(_CITIES)
    state = rng.choice(_STATES[:20])
    text = " ".join(words).replace(" ,", ", ") + rng.choice(
        (f", {city}, {state} {zip_code}", f", {city} {state} {zip_code}")
    )
    return _case(rng, text)


def varied_addresses(count: int, seed: int = 28) -> list[str]:
    """`count` addresses in the shapes and spellings web forms send: half the common shape, half odd."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            out.append(_common_address(rng))
            continue
        number = str(rng.choice((rng.randint(1, 99), rng.randint(100, 9999), rng.randint(10000, 99999))))
        if rng.random() < 0.05:
            number = rng.choice((f"{number}A", f"{number}-{rng.randint(1, 99)}", f"{number} 1/2", f"N{number}"))
        words = [number]
        if rng.random() < 0.25:
            words.append(_case(rng, rng.choice(_DIRECTIONS)))
        if rng.random() < 0.25:
            words.append(rng.choice(_MULTI))
        else:
            words += rng.sample(_NAMES, rng.choice((1, 1, 1, 2, 2, 3)))
        if rng.random() < 0.95:
            suffix = _case(rng, rng.choice(_SUFFIXES))
            words.append(suffix + ("." if rng.random() < 0.15 else ""))
        if rng.random() < 0.2:
            words.append(_case(rng, rng.choice(_DIRECTIONS)))
        street = " ".join(words)
        if rng.random() < 0.4:
            n = str(rng.choice((rng.randint(1, 99), rng.randint(100, 9999), rng.randint(1000000, 99999999))))
            unit = rng.choice(_UNITS).format(n=n, a=rng.choice("ABCDXZ"))
            street += rng.choice((" ", ", ", " ")) + _case(rng, unit)
        city = _case(rng, rng.choice(_CITIES))
        state = rng.choice(_STATES)
        zip_code = rng.choice(
            (f"{rng.randint(501, 99950):05d}", f"{rng.randint(10000, 99950)}-{rng.randint(0, 9999):04d}", "")
        )
        tail = rng.choice(
            (
                f"{city}, {state} {zip_code}",
                f"{city} {state} {zip_code}",
                f"{city}, {state}, {zip_code}",
                f"{city},{state} {zip_code}",
                f"{state} {zip_code}",
                f"{city}, {state} {zip_code}",
            )
        )
        out.append(
            " ".join(
                rng.choice((f"{street}, {tail}", f"{street}, {tail}", f"{street} {tail}", f"{street},{tail}")).split()
            )
        )
    return out


def test_the_fast_key_is_scourgifys_key_wherever_it_answers() -> None:
    answered = 0
    for raw in varied_addresses(10_000):
        fast = _fast_usps_key(raw)
        if fast:
            answered += 1
            assert fast == _usps_key(raw)[:300], raw
    # The corpus must exercise the fast path, not only the fallback.
    assert answered > 1_000


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("123 Main St #45, Seattle, WA 98101", "123 main st 45|98101"),
        ("123 main street apt. 4b, seattle wa 98101-1234", "123 main st 4b|98101"),
        ("4512 North Latona Avenue Ne, Seattle, WA 98105", "4512 n latona ave ne|98105"),
        ("600 Maple St, Suite 1203, Seattle, WA 98101", "600 maple st 1203|98101"),
        ("600 Pine St, Seattle, WA 98101", "600 pine st|98101"),  # a street type as the name
    ],
)
def test_the_fast_key_reads_the_common_shape(raw: str, key: str) -> None:
    assert _fast_usps_key(raw) == key
    assert address_key(raw) == parse_address(raw).key == key


@pytest.mark.parametrize(
    "raw",
    [
        "123 Main St Apt #4, Seattle, WA 98101",  # scourgify keeps the "#": its key, not ours
        "123 Main St, Seattle, Washington 98101",  # a state's name
        "123 Main St, Seattle, WA",  # no ZIP code: the key has the city and state
        "PO Box 123, Seattle, WA 98101",
        "123 Park Ave, New York, NY 10001",  # "Park": a street type as the name
        "N123 Main St, Seattle, WA 98101",
        "123 1st Ave, Seattle, WA 98101",
        "42858 Pine Court #94, Boston, WA 89697",  # "PINE COURT # 94" to scourgify
        "7023 Grove Terrace Pkwy NE, Portland, OR 97201",  # street types in a longer name
    ],
)
def test_the_fast_key_leaves_the_unusual_to_scourgify(raw: str) -> None:
    assert _fast_usps_key(raw) == ""
    assert address_key(raw) == parse_address(raw).key
