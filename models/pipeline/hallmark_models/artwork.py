"""Packaging artwork for each detector class: the genuine pack and its counterfeit.

`render(brand, product, role, serial)` draws the front face of a pack as a PIL RGB image. Genuine packs
follow the brand's layout; counterfeits apply their product's flaws (see `brands`). The same code draws
the reference PNGs a brand registers and the packs placed into training scenes.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from . import brands as B
from . import gs1
from .brands import Brand, Product

FONT_DIR = Path(__file__).parent / "fonts"
TEA_SIZE = (360, 500)
PHARMA_SIZE = (520, 320)


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False, serif: bool = False) -> ImageFont.FreeTypeFont:
    name = ("DejaVuSerif" if serif else "DejaVuSans") + ("-Bold" if bold else "") + ".ttf"
    return ImageFont.truetype(str(FONT_DIR / name), size)


def barcode_digits(brand: Brand, product: Product, role: str) -> str:
    """The 13 digits printed under the EAN-13 of this class (counterfeits may print wrong ones)."""
    gtin = brand.gtin(product)
    if role == "genuine":
        return gtin
    flaws = product.flaws
    if B.WRONG_CHECK_DIGIT in flaws:
        return gtin[:-1] + str((int(gtin[-1]) + 3) % 10)
    if B.OTHER_GTIN in flaws:
        others = [p for p in brand.products if p.key != product.key]
        return brand.gtin(others[0])
    if B.FOREIGN_PREFIX in flaws:
        return gs1.gtin13("4006381", product.item_reference % 100000)
    return gtin


def datamatrix_text(brand: Brand, product: Product, role: str, serial: int) -> str:
    """GS1 element string of the pack's DataMatrix: GTIN, expiry, batch and serial."""
    digits = barcode_digits(brand, product, role)
    if not gs1.is_valid(digits):  # a DataMatrix encoder refuses a bad check digit: print the real GTIN
        digits = brand.gtin(product)
    return f"(01){gs1.to_gtin14(digits)}(17)281130(10)B{serial % 9000 + 1000}(21)SN{serial:08d}"


def draw_ean13(digits: str, module: int = 2, height: int = 64) -> Image.Image:
    """An EAN-13 symbol with quiet zones and human-readable digits, black on white."""
    modules = gs1.ean13_modules(digits)
    quiet = 11 * module
    text_h = 14 + module * 2
    img = Image.new("RGB", (len(modules) * module + 2 * quiet, height + text_h), "white")
    d = ImageDraw.Draw(img)
    for i, m in enumerate(modules):
        if m == "1":
            guard = i < 3 or 45 <= i < 50 or i >= 92
            x = quiet + i * module
            d.rectangle([x, 0, x + module - 1, height + (text_h // 2 if guard else 0)], fill="black")
    f = font(12 + module)
    d.text((2, height + 2), digits[0], fill="black", font=f)
    d.text((quiet + 3 * module + 4, height + 2), " ".join(digits[1:7]), fill="black", font=f)
    d.text((quiet + 50 * module + 4, height + 2), " ".join(digits[7:]), fill="black", font=f)
    return img


def draw_datamatrix(text: str, scale: int = 4) -> Image.Image:
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix, gs1=True)
    return Image.fromarray(code.to_image(scale=scale, add_quiet_zones=True)).convert("RGB")


def _fit_font(draw: ImageDraw.ImageDraw, text: str, max_w: int, size: int, **kw) -> ImageFont.FreeTypeFont:
    while size > 8:
        f = font(size, **kw)
        if draw.textlength(text, font=f) <= max_w:
            return f
        size -= 2
    return font(size, **kw)


def _leaf(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, colour, angle: float) -> None:
    pts = []
    for t in range(0, 360, 12):
        a = math.radians(t)
        x, y = r * math.cos(a), 0.45 * r * math.sin(a) * abs(math.cos(a / 2)) * 1.6
        ca, sa = math.cos(angle), math.sin(angle)
        pts.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    d.polygon(pts, fill=colour)


def _emblem(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, colour, redrawn: bool, style: str) -> None:
    """The brand emblem: tea = ring with two leaves; pharma = rising sun. Redrawn = crude square/star."""
    if redrawn:
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        d.polygon([(cx, cy - r * 0.7), (cx + r * 0.7, cy + r * 0.6), (cx - r * 0.7, cy + r * 0.6)], fill="white")
        return
    if style == "tea":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(3, int(r / 6)))
        _leaf(d, cx - r * 0.15, cy + r * 0.05, r * 0.55, colour, -0.8)
        _leaf(d, cx + r * 0.2, cy - r * 0.1, r * 0.5, colour, 0.6)
    else:
        d.pieslice([cx - r, cy - r, cx + r, cy + r], 180, 360, fill=colour)
        for k in range(7):
            a = math.radians(180 + 15 + k * 25)
            d.line([(cx + r * 1.15 * math.cos(a), cy + r * 1.15 * math.sin(a)),
                    (cx + r * 1.5 * math.cos(a), cy + r * 1.5 * math.sin(a))], fill=colour, width=max(2, int(r / 8)))
        d.rectangle([cx - r * 1.2, cy + 2, cx + r * 1.2, cy + r * 0.22], fill=colour)


def _seal(img: Image.Image, cx: int, cy: int, r: int, square: bool = False) -> None:
    """A holographic seal: rainbow rings (circle, or a square sticker for pharma)."""
    d = ImageDraw.Draw(img)
    for k in range(r, 0, -2):
        hue = (k * 9) % 360
        rgb = tuple(int(150 + 100 * math.sin(math.radians(hue + off))) for off in (0, 120, 240))
        box = [cx - k, cy - k, cx + k, cy + k]
        (d.rectangle if square else d.ellipse)(box, fill=rgb)
    (d.rectangle if square else d.ellipse)([cx - r, cy - r, cx + r, cy + r], outline=(120, 120, 130), width=2)
    f = font(max(8, r // 3), bold=True)
    d.text((cx, cy), "OK" if square else "★", fill=(90, 90, 100), font=f, anchor="mm")


def render(brand: Brand, product: Product, role: str, serial: int = 1) -> Image.Image:
    """The front face of one pack of `product`, genuine or counterfeit."""
    flaws = set(product.flaws) if role == "counterfeit" else set()
    if brand.style == "tea":
        return _render_tea(brand, product, role, flaws)
    return _render_pharma(brand, product, role, flaws, serial)


def _wrap(draw: ImageDraw.ImageDraw, text: str, f, max_w: int) -> str:
    lines, cur = [], ""
    for word in text.replace(" - ", " ").split():
        trial = f"{cur} {word}".strip()
        if cur and draw.textlength(trial, font=f) > max_w:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return "\n".join(lines + [cur])


def _render_tea(brand: Brand, product: Product, role: str, flaws: set[str]) -> Image.Image:
    w, h = TEA_SIZE
    body = product.off_shade if B.WRONG_SHADE in flaws else product.colour
    img = Image.new("RGB", (w, h), body)
    d = ImageDraw.Draw(img)
    serif = B.REFONTED_NAME in flaws
    shifted = B.SHIFTED_LAYOUT in flaws
    # Genuine: brand band, colour zone, white code panel, top to bottom. Shifted: the code panel sits
    # right under the band. (Swapping band and panel would be the genuine pack turned upside down, which
    # a conveyor shows all the time: a layout flaw must survive a half-turn.)
    band_y = 0
    panel_y, zone_top, zone_bottom = (110, 240, h) if shifted else (h - 130, 110, h - 130)
    d.rectangle([0, band_y, w, band_y + 110], fill=(245, 240, 225))
    logo = product.off_colour if B.OFF_COLOUR_LOGO in flaws else brand.logo_colour
    ex = w - 60 if shifted else 60
    _emblem(d, ex, band_y + 55, 38, logo, B.REDRAWN_LOGO in flaws, "tea")
    bf = font(34, bold=True, serif=serif)
    # The word mark is printed in the brand's ink with the logo; a counterfeit that gets the logo's
    # colour wrong gets the word mark's wrong with it (as Aurora's does).
    mark = logo if B.OFF_COLOUR_LOGO in flaws else product.colour
    d.text((40 if shifted else w - 25, band_y + 55), brand.name, fill=mark, font=bf,
           anchor="lm" if shifted else "rm")
    # Product name, decorative leaves in the accent colour, quality seal.
    name = product.misspelling if B.MISSPELT_NAME in flaws else product.name
    words = name.split(" ")
    lines = [words[0], " ".join(words[1:])] if len(name) > 10 and len(words) > 1 else [name]
    name_y = zone_top + 60
    for i, line in enumerate(lines):
        f = _fit_font(d, line, w - 50, 52, bold=True, serif=serif)
        x, anchor = (24, "lm") if shifted else (w // 2, "mm")
        d.text((x, name_y + i * 58), line, fill="white", font=f, anchor=anchor)
    for k in range(3):
        _leaf(d, w * (0.25 + 0.25 * k), zone_bottom - 90, 26, product.accent, -0.5 + 0.5 * k)
    if B.MISSING_SEAL not in flaws:
        _seal(img, w - 62 if shifted else 62, zone_bottom - 40, 34)
    # White panel: caption and EAN-13.
    d.rectangle([0, panel_y, w, panel_y + 130], fill="white")
    cf = font(13, serif=serif)
    d.multiline_text((10, panel_y + 22), _wrap(d, product.caption, cf, 100), fill=(40, 40, 40), font=cf)
    code = draw_ean13(barcode_digits(brand, product, role), module=2, height=70)
    img.paste(code, (w - code.width - 6, panel_y + 20))
    return img


def _render_pharma(brand: Brand, product: Product, role: str, flaws: set[str], serial: int) -> Image.Image:
    w, h = PHARMA_SIZE
    serif = B.REFONTED_NAME in flaws
    shifted = B.SHIFTED_LAYOUT in flaws
    stripe = product.off_shade if B.WRONG_SHADE in flaws else product.colour
    # The card is tinted with the product's colour, as pharma ranges colour-code strengths and products:
    # the product shows across the whole box, not only in the stripe at its edge.
    tint = tuple(int(250 * 0.7 + c * 0.3) for c in stripe)
    img = Image.new("RGB", (w, h), tint)
    d = ImageDraw.Draw(img)
    # Genuine: a colour stripe down the left edge. Shifted: the stripe runs across the top instead (a
    # stripe on the right would be the genuine box turned upside down, not a layout flaw).
    wave = tuple(min(255, c + 60) for c in stripe)
    if shifted:
        d.rectangle([0, 0, w, 34], fill=stripe)
        for k in range(6):  # wave motif along the stripe edge
            x = 10 + k * 85
            d.pieslice([x, -4, x + 70, 50], 20, 160, fill=wave)
    else:
        d.rectangle([0, 0, 120, h], fill=stripe)
        for k in range(4):  # wave motif across the stripe edge
            y = 40 + k * 70
            d.pieslice([-30, y, 150, y + 60], 200, 340, fill=wave)
    left, dy = (20, 18) if shifted else (140, 0)
    # Brand: sun emblem + lower-case word mark.
    logo = product.off_colour if B.OFF_COLOUR_LOGO in flaws else brand.logo_colour
    lx = left + 30
    _emblem(d, lx, 52 + dy, 24, logo, B.REDRAWN_LOGO in flaws, "pharma")
    d.text((lx + 45, 52 + dy), brand.name, fill=logo, font=font(36, bold=True, serif=serif), anchor="lm")
    name = product.misspelling if B.MISSPELT_NAME in flaws else product.name
    f = _fit_font(d, name, 360, 40, bold=True, serif=serif)
    d.text((left, 125 + dy), name, fill=tuple(int(c * 0.8) for c in product.colour), font=f, anchor="lm")
    d.text((left, 165 + dy), product.caption, fill=(60, 60, 60), font=font(18, serif=serif), anchor="lm")
    if B.MISSING_SEAL not in flaws:
        _seal(img, w - 40 if not shifted else w - 170, 52 + dy, 26, square=True)
    # Codes: GS1 DataMatrix and EAN-13, bottom.
    dm = draw_datamatrix(datamatrix_text(brand, product, role, serial), scale=4)
    code = draw_ean13(barcode_digits(brand, product, role), module=2, height=54)
    y = h - code.height - 12
    img.paste(code, (left - 10, y))
    img.paste(dm, (left + code.width + 20 if not shifted else left + code.width + 10, h - dm.height - 16))
    return img
