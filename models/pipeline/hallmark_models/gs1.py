"""GS1 numbers: check digits, GTIN assembly and EAN-13 bar patterns. Pure functions, no I/O."""

from __future__ import annotations

# EAN-13 symbol character sets (GS1 General Specifications, 5.2.2): L (odd parity), G (even) and R.
_L = ["0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011"]
_G = ["0100111", "0110011", "0011011", "0100001", "0011101", "0111001", "0000101", "0010001", "0001001", "0010111"]
_R = ["1110010", "1100110", "1101100", "1000010", "1011100", "1001110", "1010000", "1000100", "1001000", "1110100"]
# The first digit of an EAN-13 is encoded in the L/G parity pattern of the left half.
_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]


def check_digit(body: str) -> int:
    """GS1 mod-10 check digit of `body` (all digits but the check digit), any GTIN length."""
    if not body.isdigit():
        raise ValueError(f"GS1 number must be digits, got {body!r}")
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_valid(number: str) -> bool:
    """True when `number` (GTIN-8/12/13/14) carries a correct check digit."""
    return number.isdigit() and len(number) >= 8 and check_digit(number[:-1]) == int(number[-1])


def gtin13(company_prefix: str, item_reference: int) -> str:
    """A GTIN-13 from a GS1 company prefix and an item reference, with its check digit."""
    width = 12 - len(company_prefix)
    if width <= 0 or item_reference >= 10**width:
        raise ValueError(f"item reference {item_reference} does not fit after prefix {company_prefix}")
    body = f"{company_prefix}{item_reference:0{width}d}"
    return body + str(check_digit(body))


def to_gtin14(gtin: str) -> str:
    """The 14-digit form (zero-padded) used in GS1 element strings and manifests."""
    return gtin.zfill(14)


def ean13_modules(digits: str) -> str:
    """The 95 modules ('1' = bar) of an EAN-13 symbol for 13 digits.

    The check digit is encoded as given, not recomputed: counterfeit packs print wrong ones."""
    if len(digits) != 13 or not digits.isdigit():
        raise ValueError(f"EAN-13 needs 13 digits, got {digits!r}")
    parity = _PARITY[int(digits[0])]
    left = "".join((_L if p == "L" else _G)[int(d)] for p, d in zip(parity, digits[1:7]))
    right = "".join(_R[int(d)] for d in digits[7:13])
    return "101" + left + "01010" + right + "101"
