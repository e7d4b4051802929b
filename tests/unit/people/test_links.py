"""Link tokens name the key that signed them, so the link secret rotates: the current key signs, the previous ones
listed in the setting (`new,old`) are accepted for a grace period, a removed one is refused."""

import base64
import hashlib
import hmac

import pytest

from shared.people import links
from shared.settings import ConfigurationError

NEW, OLD, OLDER = "link-secret-new", "link-secret-old", "link-secret-older"
ROTATION = f"{NEW},{OLD}"  # a rotation in progress: NEW signs, OLD is still accepted


def legacy_token(contact_id: str, scope: str, key: str) -> str:
    """A token as parcours signed them before key ids (in emails already sent): contact, scope and MAC only."""
    digest = hmac.new(key.encode(), f"{contact_id}:{scope}".encode(), hashlib.sha256).digest()
    return f"{contact_id}.{scope}.{base64.urlsafe_b64encode(digest[:18]).decode()}"


def test_a_new_token_names_the_current_key_and_is_accepted() -> None:
    token = links.token("c0ffee", "all", ROTATION)
    assert token.startswith(links.key_id(NEW) + ".c0ffee.all.")
    assert links.verify(token, ROTATION) == ("c0ffee", "all")
    assert links.verify(token, NEW) == ("c0ffee", "all")  # once OLD is removed, still genuine
    assert links.token("c0ffee", "all", ROTATION) == links.token("c0ffee", "all", f" {NEW} , {OLD},")


def test_key_ids_are_short_names_that_differ_by_key() -> None:
    assert links.key_id(NEW) != links.key_id(OLD)
    assert len(links.key_id(NEW)) == 9
    assert NEW not in links.key_id(NEW)


def test_a_token_signed_with_the_old_key_is_accepted_while_the_old_key_is_listed() -> None:
    token = links.token("c0ffee", "preferences", OLD)  # sent before the rotation
    assert links.verify(token, ROTATION) == ("c0ffee", "preferences")
    assert links.verify(token, f"{NEW},{OLDER},{OLD}") == ("c0ffee", "preferences")


def test_a_token_signed_with_a_removed_key_is_refused() -> None:
    assert links.verify(links.token("c0ffee", "all", OLDER), ROTATION) is None
    assert links.verify(links.token("c0ffee", "all", OLD), NEW) is None  # the grace period is over


def test_a_token_without_a_key_id_keeps_working_while_its_key_is_listed() -> None:
    old_format = legacy_token("c0ffee", "all", OLD)
    assert links.verify(old_format, OLD) == ("c0ffee", "all")  # the upgrade itself changes nothing
    assert links.verify(old_format, ROTATION) == ("c0ffee", "all")  # nor does a rotation in progress
    assert links.verify(old_format, NEW) is None  # until its key leaves the list
    assert links.verify(legacy_token("c0ffee", "all", OLDER), ROTATION) is None


@pytest.mark.parametrize("setting", [NEW, ROTATION])
def test_a_tampered_token_is_refused(setting: str) -> None:
    genuine = links.token("c0ffee", "all", setting)
    kid, contact, scope, mac = genuine.split(".")
    old_kid = links.key_id(OLD)
    old_mac = links.token("c0ffee", "all", OLD).split(".")[3]
    tampered = [
        f"{kid}.{contact}.{scope}.{mac[:-2]}{'BB' if mac.endswith('AA') else 'AA'}",  # the MAC edited
        f"{kid}.someoneelse.{scope}.{mac}",  # another contact under the same MAC
        f"{kid}.{contact}.preferences.{mac}",  # another scope
        f"{old_kid}.{contact}.{scope}.{mac}",  # the key id swapped: the MAC is NEW's
        f"{kid}.{contact}.{scope}.{old_mac}",  # the key id swapped the other way
        f"{contact}.{scope}.{mac}",  # the key id dropped: a token without one is signed differently
        f"kffffffff.{contact}.{scope}.{mac}",  # a key id no listed key has
    ]
    for token in tampered:
        assert links.verify(token, setting) is None, token


def test_a_setting_that_lists_no_key_is_a_configuration_mistake() -> None:
    with pytest.raises(ConfigurationError, match="no key"):
        links.token("c0ffee", "all", " , ")


def test_an_unsubscribe_token_names_its_email_under_the_mac_and_the_older_tokens_stay_valid() -> None:
    origin = links.Origin("abandoned-cart", "e1-reminder", "b")
    token = links.token("c0ffee", "all", ROTATION, origin)
    assert links.read(token, ROTATION) == links.Link("c0ffee", "all", origin)
    assert links.verify(token, ROTATION) == ("c0ffee", "all")
    assert links.read(token, OLD) is None  # signed with NEW
    # Moved to another email (or to none): refused
    kid, contact, scope, _, mac = token.split(".")
    other = links.Origin("welcome", "e1-welcome").encoded()
    assert links.read(f"{kid}.{contact}.{scope}.{other}.{mac}", ROTATION) is None
    assert links.read(f"{kid}.{contact}.{scope}.{mac}", ROTATION) is None
    assert links.read(f"{kid}.{contact}.{scope}.not-base64!.{mac}", ROTATION) is None
    # The tokens of emails sent before it: as they were
    assert links.read(links.token("c0ffee", "all", ROTATION), ROTATION) == links.Link("c0ffee", "all")
    assert links.read(legacy_token("c0ffee", "all", OLD), ROTATION) == links.Link("c0ffee", "all")
    assert links.Origin.decoded(links.Origin("s", "e", None).encoded()) == links.Origin("s", "e", None)
