"""Products as emails show them: the lines of a cart or an order, and the recommended products a shop passes.

Every source builds its lines here, and the properties a site sends (`lines`, `recommendations`) are cleaned here,
so a template can trust what it reads: text is trimmed and bounded, and a link or an image is an absolute http(s)
URL or nothing. Autoescaping keeps a name from breaking the HTML, but not `href="javascript:..."`: only the scheme
check does.

A line: {name, variant, quantity, price, product_id, image, url}. A recommendation: {name, image, url, price}.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.events import PayloadError

MAX_LINES = 20  # enough for any email's product block; keeps the queued event far below 256 KiB
MAX_RECOMMENDATIONS = 6  # a grid of three rows of two
MAX_URL = 2048  # longer links break in some mail clients and bloat the event
MAX_NAME = 200
MAX_SHORT = 64  # a variant, a price, an id
SCHEMES = ("http", "https")


class ProductError(PayloadError):
    """`lines` or `recommendations` not shaped as documented; the text names the field (`properties.lines[2]`)."""


MAX_QUANTITY = 1_000_000


def items(value: object) -> list[Any]:
    """A payload's list (line items, codes, meta data), or none: `true` or `3` in its place iterates as nothing."""
    return value if isinstance(value, list) else []


def check_quantity(value: object, field: str) -> None:
    """A line's quantity as a source gives it: absent, 0 or not a whole number reads as 1 (`line`), but a negative
    or absurd one is refused (ProductError naming the field): a count that no order has."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value) or value < 0 or value > MAX_QUANTITY:
        raise ProductError(f"{field}: must be a whole number between 1 and {MAX_QUANTITY}")


def web_url(value: object) -> str | None:
    """An absolute http(s) URL of at most MAX_URL characters, else None: a `javascript:` or `data:` URL, a relative
    path or anything with spaces or control characters is dropped. `//cdn...` (protocol-relative) becomes https."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("//"):
        text = "https:" + text
    if not text or len(text) > MAX_URL or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        return None
    return text


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())  # no newlines or runs of spaces in a one-line label
    return text[:limit].rstrip() or None


def _amount(value: object) -> str | None:
    """A price as the source wrote it ("14.95", 14.95, 15); not a boolean, not NaN."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return _text(str(value), MAX_SHORT)


def _identifier(value: object) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return _text(value, MAX_SHORT)


def line(
    *,
    name: object,
    variant: object = None,
    quantity: object = None,
    price: object = None,
    product_id: object = None,
    image: object = None,
    url: object = None,
) -> dict[str, Any]:
    """One product line, every key present (None when the source does not say), so templates read them all."""
    given = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
    return {
        "name": _text(name, MAX_NAME) or "",
        "variant": _text(variant, MAX_SHORT),
        "quantity": given if given is not None and given > 0 else 1,
        "price": _amount(price),
        "product_id": _identifier(product_id),
        "image": web_url(image),
        "url": web_url(url),
    }


def recommendation(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A recommended product; None without a name (nothing to show, nor an alt text for its image)."""
    name = _text(item.get("name"), MAX_NAME)
    if name is None:
        return None
    return {
        "name": name,
        "image": web_url(item.get("image") or item.get("image_url")),  # image_url: Segment's spec's name
        "url": web_url(item.get("url")),
        "price": _amount(item.get("price")),
    }


def _objects(value: object, field: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise ProductError(f"{field} must be a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ProductError(f"{field}[{index}] must be an object")
    return value


def lines(value: object, field: str = "properties.lines") -> list[dict[str, Any]]:
    """`lines` as a site sends them: [{name, variant, quantity, price, product_id, image, url}], the first 20."""
    items = _objects(value, field)[:MAX_LINES]
    for index, item in enumerate(items):
        check_quantity(item.get("quantity"), f"{field}[{index}].quantity")
    return [
        line(
            name=item.get("name"),
            variant=item.get("variant"),
            quantity=item.get("quantity"),
            price=item.get("price"),
            product_id=item.get("product_id"),
            image=item.get("image"),
            url=item.get("url"),
        )
        for item in items
    ]


def recommendations(value: object, field: str = "properties.recommendations") -> list[dict[str, Any]]:
    """`recommendations` as a shop's form or app sends them: [{name, image, url, price}]; the first 6 with a name."""
    kept = [chosen for item in _objects(value, field) if (chosen := recommendation(item)) is not None]
    return kept[:MAX_RECOMMENDATIONS]


LINKS = ("recovery_url", "status_url")  # a cart's way back, an order's status page: written into an href


def clean(properties: Mapping[str, Any], where: str = "properties.") -> dict[str, Any]:
    """A site's event properties with their `lines` and `recommendations` (when given) cleaned, and the links
    templates put in an href (`recovery_url`, `status_url`) kept only when they are http(s); the rest as sent.
    Raises ProductError naming the field when `lines` or `recommendations` is not a list of objects."""
    cleaned = dict(properties)
    for link in LINKS:
        if link in properties:
            cleaned[link] = web_url(properties[link])
    if properties.get("lines") is not None:
        cleaned["lines"] = lines(properties["lines"], f"{where}lines")
    if properties.get("recommendations") is not None:
        cleaned["recommendations"] = recommendations(properties["recommendations"], f"{where}recommendations")
    return cleaned


def discount_code(codes: Iterable[object]) -> str | None:
    """The order's discount codes as one text (`SUMMER10` or `SUMMER10,FREESHIP`), None without any: what a
    rule or a template reads (`where: {discount_code: {exists: true}}`)."""
    kept = [code.strip() for code in codes if isinstance(code, str) and code.strip()]
    return ",".join(kept) if kept else None
