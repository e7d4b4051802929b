from shared.signatures import shopify_signature, verify_shopify
from tests.conftest import sample

BODY = sample("shopify/customers-create.json")


def test_a_signature_made_with_the_app_secret_is_accepted() -> None:
    assert verify_shopify(BODY, shopify_signature(BODY, "app-secret"), "app-secret")


def test_a_signature_made_with_another_secret_is_refused() -> None:
    assert not verify_shopify(BODY, shopify_signature(BODY, "other"), "app-secret")


def test_a_body_changed_after_signing_is_refused() -> None:
    signature = shopify_signature(BODY, "app-secret")
    assert not verify_shopify(BODY.replace(b"Camille", b"Mallory"), signature, "app-secret")


def test_reformatted_json_is_refused_because_the_bytes_changed() -> None:
    signature = shopify_signature(BODY, "app-secret")
    assert not verify_shopify(BODY.replace(b"\n", b"\r\n"), signature, "app-secret")


def test_missing_or_empty_signature_or_secret_is_refused() -> None:
    assert not verify_shopify(BODY, None, "app-secret")
    assert not verify_shopify(BODY, "", "app-secret")
    assert not verify_shopify(BODY, shopify_signature(BODY, ""), "")


def test_the_header_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    # Known answer computed independently: printf 'hello' | openssl dgst -sha256 -hmac key -binary | base64
    assert shopify_signature(b"hello", "key") == "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOli3s="
