"""How many SMS an SMS text costs: operators bill per segment, and one character outside the GSM-7 alphabet (an
emoji, a French `ê` or `ç`) switches the whole message to UCS-2, which fits 70 characters instead of 160.

The alphabets are 3GPP TS 23.038 (GSM 03.38): the basic set costs one septet per character, the extension table two
(an escape, then the character). A long message is split into concatenated segments whose header takes room (153
septets or 67 UTF-16 units each), and a split never cuts an escape sequence or a surrogate pair in two, so a text
is packed segment by segment rather than divided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# The 128 characters of the GSM 03.38 basic set, in code order (0x1B, the escape, is left out: it is no character).
# Note 0x09 is the capital Ç (the lowercase ç is not in the set), 0x24 is ¤ and 0x60 is ¿ (no backtick).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each sent as escape + character: two septets
GSM7 = GSM7_BASIC | GSM7_EXTENSION

SINGLE = {"GSM-7": 160, "UCS-2": 70}  # what one segment holds, alone
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}  # what each segment of a longer message holds


@dataclass(frozen=True)
class SmsSize:
    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if GSM7.issuperset(text) else "UCS-2"


def outside_gsm7(text: str) -> list[str]:
    """The characters that make a text UCS-2, in order of appearance (often a typographic ’ or a non-breaking
    space typed by a word processor, or a French ê or ç)."""
    return list(dict.fromkeys(c for c in text if c not in GSM7))


def _cost(character: str, encoding: Encoding) -> int:
    if encoding == "UCS-2":
        return 2 if ord(character) > 0xFFFF else 1  # outside the BMP: a surrogate pair
    return 2 if character in GSM7_EXTENSION else 1


def size(text: str) -> SmsSize:
    """The encoding, length and segment count of the text exactly as it is published (stop mention included)."""
    encoding = encoding_of(text)
    costs = [_cost(character, encoding) for character in text]
    units = sum(costs)
    if units <= SINGLE[encoding]:
        return SmsSize(encoding, units, 1 if text else 0)
    segments, room = 1, CONCATENATED[encoding]
    for cost in costs:
        if cost > room:  # the escape sequence or surrogate pair goes whole to the next segment
            segments, room = segments + 1, CONCATENATED[encoding]
        room -= cost
    return SmsSize(encoding, units, segments)
