"""What an SMS costs: its encoding (GSM-7 or UCS-2) and its segment count, at the boundaries operators bill by."""

import pytest

from shared.messages.segments import GSM7_BASIC, size
from shared.settings import Settings

STOP = "\n" + Settings.sms_stop_text  # the default stop mention, as send_sms appends it


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        # the French letters of the basic set keep GSM-7: é è ù à É Ç
        ("Été : déjà là ? Où ? Ça !", "GSM-7", 25, 1),
        ("Votre thé à la menthe, c'est prêt", "UCS-2", 33, 1),  # ê is not in GSM-7
        ("Ça y est : leçon reçue", "UCS-2", 22, 1),  # the lowercase ç is not either (the capital Ç is)
        ("Ça y est", "GSM-7", 8, 1),
        ("ê" + "a" * 69, "UCS-2", 70, 1),
        ("ê" + "a" * 70, "UCS-2", 71, 2),
        ("ê" + "a" * 133, "UCS-2", 134, 2),
        ("ê" + "a" * 134, "UCS-2", 135, 3),
        ("Merci 😀", "UCS-2", 8, 1),  # an emoji is two UTF-16 units
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 35 + "a", "UCS-2", 71, 2),
        # the extension table costs two septets each
        ("€" * 80, "GSM-7", 160, 1),
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("[{}]^~\\|" + "a" * 144, "GSM-7", 160, 1),
        ("[{}]^~\\|" + "a" * 145, "GSM-7", 161, 2),
        # a split never cuts an escape sequence or a surrogate pair: it moves whole to the next segment
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("a" * 153 + "€" + "a" * 151, "GSM-7", 306, 2),
        ("ê" + "a" * 65 + "😀" + "a" * 66, "UCS-2", 134, 3),
        ("ê" + "a" * 66 + "😀" + "a" * 65, "UCS-2", 134, 2),
        ("Hello" + STOP, "GSM-7", 26, 1),  # the default stop mention's é is in GSM-7
        ("Merci 😀" + STOP, "UCS-2", 29, 1),
    ],
)
def test_encoding_and_segments(text: str, encoding: str, units: int, segments: int) -> None:
    answer = size(text)
    assert (answer.encoding, answer.units, answer.segments) == (encoding, units, segments)


def test_the_basic_set_is_the_127_characters_of_gsm_03_38_and_nothing_else() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes, the escape is not a character
    for character in "éèùìòÇØøÅåÄÖÑÜ§¿äöñüàÉÆæß£¥¤¡ΔΦΓΛΩΠΨΣΘΞ_@$\n\r":
        assert character in GSM7_BASIC, character
    for character in "êâôîçûëïÀÈÊ`€[":
        assert character not in GSM7_BASIC, character
