"""The brands, their products and the flaws of each product's counterfeit. Pure data.

Each product gives two detector classes: the genuine pack and its counterfeit. A counterfeit carries
several flaws at once, as real ones do: at least one that shows at a glance (colour, logo, seal, layout)
and finer ones (spelling, font, barcode) that only a close look or the barcode check catches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import gs1

Rgb = tuple[int, int, int]

# Flaw names, applied by `artwork.render`.
OFF_COLOUR_LOGO = "off_colour_logo"  # logo drawn in the wrong colour
REDRAWN_LOGO = "redrawn_logo"  # logo emblem simplified / wrong shape
MISSPELT_NAME = "misspelt_name"  # product name misspelt (text given by `misspelling`)
REFONTED_NAME = "refonted_name"  # names set in a serif face instead of the brand's sans
MISSING_SEAL = "missing_seal"  # no hologram / quality seal
SHIFTED_LAYOUT = "shifted_layout"  # elements moved: band, logo and name positions differ
WRONG_SHADE = "wrong_shade"  # the pack's main colour is off
WRONG_CHECK_DIGIT = "wrong_check_digit"  # EAN-13 printed with a wrong check digit
OTHER_GTIN = "other_gtin"  # barcode carries another product's GTIN
FOREIGN_PREFIX = "foreign_prefix"  # barcode carries a GTIN outside the brand's GS1 prefix


@dataclass(frozen=True)
class Product:
    key: str  # class-name stem, e.g. "earl-grey"
    name: str  # name printed on the pack
    full_name: str  # product as the manifest names it
    item_reference: int
    colour: Rgb  # the pack's main colour
    accent: Rgb
    caption: str  # small print under the name
    flaws: tuple[str, ...]  # the counterfeit's flaws
    misspelling: str = ""
    off_colour: Rgb = (0, 0, 0)
    off_shade: Rgb = (0, 0, 0)


@dataclass(frozen=True)
class Brand:
    key: str
    name: str
    style: str  # "tea" (portrait carton, EAN-13) or "pharma" (landscape box, EAN-13 + GS1 DataMatrix)
    gs1_prefix: str
    logo_colour: Rgb
    products: tuple[Product, ...] = field(default_factory=tuple)

    def gtin(self, product: Product) -> str:
        return gs1.gtin13(self.gs1_prefix, product.item_reference)

    def classes(self) -> list[dict]:
        """The manifest's class table: per product, genuine then counterfeit."""
        out = []
        for product in self.products:
            gtin = gs1.to_gtin14(self.gtin(product))
            for role in ("genuine", "counterfeit"):
                out.append(
                    {
                        "id": len(out),
                        "name": product.key if role == "genuine" else f"{product.key}-counterfeit",
                        "product": product.full_name,
                        "gtin": gtin,
                        "role": role,
                    }
                )
        return out


# 9501101 and 0614141 are the company prefixes GS1 itself uses in its examples.
NORTHWIND = Brand(
    key="northwind",
    name="NORTHWIND",
    style="tea",
    gs1_prefix="9501101",
    logo_colour=(212, 175, 55),
    products=(
        Product(
            key="earl-grey",
            name="EARL GREY",
            full_name="Northwind Earl Grey, 50 tea bags",
            item_reference=1021,
            colour=(28, 45, 96),
            accent=(212, 175, 55),
            caption="Black tea with bergamot - 50 bags",
            flaws=(OFF_COLOUR_LOGO, REDRAWN_LOGO, MISSPELT_NAME, WRONG_CHECK_DIGIT),
            misspelling="EARL GRAY",
            off_colour=(150, 200, 60),
        ),
        Product(
            key="green-jasmine",
            name="GREEN JASMINE",
            full_name="Northwind Green Jasmine, 40 tea bags",
            item_reference=1038,
            colour=(30, 110, 60),
            accent=(240, 235, 210),
            caption="Green tea with jasmine - 40 bags",
            flaws=(MISSING_SEAL, REFONTED_NAME, WRONG_SHADE, OTHER_GTIN),
            off_shade=(95, 170, 70),
        ),
        Product(
            key="chai-spice",
            name="CHAI SPICE",
            full_name="Northwind Chai Spice, 40 tea bags",
            item_reference=1045,
            colour=(140, 40, 30),
            accent=(240, 160, 40),
            caption="Black tea with cinnamon - 40 bags",
            flaws=(SHIFTED_LAYOUT, MISSPELT_NAME, FOREIGN_PREFIX),
            misspelling="CHAI SPlCE",
        ),
    ),
)

AURORA = Brand(
    key="aurora",
    name="aurora",
    style="pharma",
    gs1_prefix="0614141",
    logo_colour=(0, 120, 190),
    products=(
        Product(
            key="ibuprofen-200",
            name="Ibuprofen 200 mg",
            full_name="Aurora Ibuprofen 200 mg, 24 tablets",
            item_reference=20011,
            colour=(235, 120, 20),
            accent=(0, 120, 190),
            caption="24 film-coated tablets",
            flaws=(OFF_COLOUR_LOGO, REDRAWN_LOGO, MISSPELT_NAME, OTHER_GTIN),
            misspelling="Ibuprophen 200 mg",
            off_colour=(200, 30, 120),
        ),
        Product(
            key="paracetamol-500",
            name="Paracetamol 500 mg",
            full_name="Aurora Paracetamol 500 mg, 16 tablets",
            item_reference=20028,
            colour=(20, 90, 200),
            accent=(0, 120, 190),
            caption="16 tablets - pain and fever",
            flaws=(MISSING_SEAL, REFONTED_NAME, WRONG_SHADE, WRONG_CHECK_DIGIT),
            off_shade=(110, 170, 235),
        ),
        Product(
            key="cetirizine-10",
            name="Cetirizine 10 mg",
            full_name="Aurora Cetirizine 10 mg, 30 tablets",
            item_reference=20035,
            colour=(120, 50, 160),
            accent=(0, 120, 190),
            caption="30 tablets - allergy relief",
            flaws=(SHIFTED_LAYOUT, MISSPELT_NAME, FOREIGN_PREFIX),
            misspelling="Cetirizin 10 mg",
        ),
    ),
)

BRANDS = {b.key: b for b in (NORTHWIND, AURORA)}


def class_table(brand: Brand) -> list[tuple[Product, str]]:
    """(product, role) per class id, in manifest order."""
    return [(p, role) for p in brand.products for role in ("genuine", "counterfeit")]
