from shared.sources.signatures import (
    shopify_signature,
    timestamped_signature,
    verify_shopify,
    verify_timestamped,
    verify_woocommerce,
    woocommerce_signature,
)
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


def test_a_timestamped_signature_is_hex_hmac_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"crm-secret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert timestamped_signature(BODY, "crm-secret", 1700000000) == f"t=1700000000,v1={expected}"


def test_a_timestamped_signature_verifies_with_its_secret_within_five_minutes_only() -> None:
    header = timestamped_signature(BODY, "crm-secret", 1700000000)
    assert verify_timestamped(BODY, header, ["crm-secret"], now=1700000000 + 300)
    assert verify_timestamped(BODY, header, ["old-secret", "crm-secret"], now=1700000000)  # rotation
    assert not verify_timestamped(BODY, header, ["another-secret"], now=1700000000)
    assert not verify_timestamped(BODY, header, ["crm-secret"], now=1700000000 + 301)
    assert not verify_timestamped(BODY + b" ", header, ["crm-secret"], now=1700000000)
    assert not verify_timestamped(BODY, header.replace("t=1700000000", "t=1700000001"), ["crm-secret"], 1700000000)
    assert not verify_timestamped(BODY, "v1=abc", ["crm-secret"], now=1700000000)
    assert not verify_timestamped(BODY, None, ["crm-secret"], now=1700000000)
    assert not verify_timestamped(BODY, header, [""], now=1700000000)


def test_a_woocommerce_signature_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    # Known answer computed independently: printf 'hello' | openssl dgst -sha256 -hmac key -binary | base64
    assert woocommerce_signature(b"hello", "key") == "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOli3s="


def test_a_woocommerce_signature_verifies_with_its_secret_over_the_same_bytes_only() -> None:
    body = sample("woocommerce/order-created.json")
    signature = woocommerce_signature(body, "wc-secret")
    assert verify_woocommerce(body, signature, "wc-secret")
    assert not verify_woocommerce(body, signature, "another-secret")
    assert not verify_woocommerce(body.replace(b"64.70", b"0.01"), signature, "wc-secret")
    assert not verify_woocommerce(body, None, "wc-secret")
    assert not verify_woocommerce(body, "", "wc-secret")
    assert not verify_woocommerce(body, woocommerce_signature(body, ""), "")
