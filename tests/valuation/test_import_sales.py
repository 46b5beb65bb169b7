from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from valuation.models import Sale

HEADER = "pinx,sale_id,sale_price,sale_date,use_type,area,lot_sf,wfnt,bldg_grade,tot_sf,beds,baths,age,eff_age,longitude,latitude\n"
GOOD_1 = (
    "..0001800010,2013..2432,289000,2013-02-06,sfr,79,9295,0,7,2560,6,5.5,98,6,-122.312491367052,47.5613803736604\n"
)
GOOD_2 = "..0001800066,2013..21560,356000,2013-07-11,townhouse,18,6000,1,6,1540,3,1.75,87,87,-122.322006580272,47.5503532433953\n"
BAD_PRICE = (
    "..0001800075,2010..24221,abc,2010-12-29,sfr,79,7200,0,8,2380,3,1.75,80,80,-122.311654219768,47.5614699896362\n"
)
BAD_DATE = (
    "..0001800080,2012..9521,237000,2012-13-02,sfr,79,5662,0,7,1370,4,2.75,72,72,-122.309695489712,47.5614722905677\n"
)
BAD_TYPE = "..0001800081,2012..9522,237000,2012-05-02,condo,79,5662,0,7,1370,4,2.75,72,72,-122.3096,47.5614\n"
GOOD_3 = "..0001800090,2014..1,500000,2014-03-01,sfr,79,5000,0,8,2000,3,2,10,10,-122.31,47.56\n"
DUPLICATE = "..0001800091,2014..1,510000,2014-03-02,sfr,79,5000,0,8,2000,3,2,10,10,-122.31,47.56\n"


def run_import(path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_sales", str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(HEADER + GOOD_1 + BAD_PRICE + GOOD_2 + BAD_DATE + BAD_TYPE + GOOD_3 + DUPLICATE)

    out, err = run_import(path)

    assert err.splitlines() == [
        "line 3: sale_price is not a number: 'abc'",
        "line 5: sale_date is not an ISO date: '2012-13-02'",
        "line 6: use_type must be one of sfr, townhouse: 'condo'",
        "line 8: duplicate sale_id 2014..1 (first on line 7)",
    ]
    assert out.strip() == "7 rows: 3 new, 0 updated, 4 bad rows skipped"
    assert sorted(Sale.objects.values_list("sale_id", flat=True)) == ["2013..21560", "2013..2432", "2014..1"]
    sale = Sale.objects.get(sale_id="2013..21560")
    assert (sale.pinx, sale.price, sale.sale_date, sale.use_type, sale.waterfront) == (
        "..0001800066",
        356000,
        dt.date(2013, 7, 11),
        "townhouse",
        True,
    )
    assert (sale.living_area_sqft, sale.beds, sale.baths, sale.year_built, sale.eff_age) == (1540, 3, 1.75, 1926, 87)
    assert Sale.objects.get(sale_id="2014..1").price == 500000


@pytest.mark.django_db
def test_import_is_idempotent_and_updates_changed_rows(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(HEADER + GOOD_1 + GOOD_2)
    run_import(path)
    first_ids = dict(Sale.objects.values_list("sale_id", "id"))

    out, _ = run_import(path)
    assert out.strip() == "2 rows: 0 new, 2 updated, 0 bad rows skipped"
    assert dict(Sale.objects.values_list("sale_id", "id")) == first_ids

    path.write_text(HEADER + GOOD_1.replace(",289000,", ",299000,") + GOOD_3)
    out, _ = run_import(path)
    assert out.strip() == "2 rows: 1 new, 1 updated, 0 bad rows skipped"
    assert Sale.objects.count() == 3
    assert Sale.objects.get(sale_id="2013..2432").price == 299000


@pytest.mark.django_db
def test_file_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("sale_id,price\n1,2\n")
    with pytest.raises(CommandError, match="missing column"):
        run_import(path)
    assert Sale.objects.count() == 0
