import numpy as np
import pytest
import zxingcpp

from hallmark_models import artwork, gs1


def test_check_digit_matches_published_gtins():
    # GTINs printed on real products, check digits as published.
    assert gs1.is_valid("4006381333931")
    assert gs1.is_valid("5000112637922")
    assert gs1.check_digit("400638133393") == 1
    assert not gs1.is_valid("4006381333932")


def test_gtin13_pads_item_reference_and_appends_check_digit():
    gtin = gs1.gtin13("9501101", 1021)
    assert gtin == "9501101010215" and gs1.is_valid(gtin)
    with pytest.raises(ValueError):
        gs1.gtin13("9501101", 100000)


def test_ean13_symbol_decodes_to_its_digits():
    for digits in ("9501101010215", "0614141200115", "4006381333931"):
        img = np.asarray(artwork.draw_ean13(digits).convert("L"))
        found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.EAN13)
        assert [b.text for b in found] == [digits]


def test_ean13_rejects_wrong_length():
    with pytest.raises(ValueError):
        gs1.ean13_modules("123")
