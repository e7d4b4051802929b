"""The one place event data becomes a product an email shows: links and images are http(s) or nothing."""

from typing import Any

import pytest

from shared.sources import products


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://boutique.example/p/carnet?variant=2#top", "https://boutique.example/p/carnet?variant=2#top"),
        ("  http://boutique.example/p  ", "http://boutique.example/p"),
        ("HTTPS://boutique.example/p", "HTTPS://boutique.example/p"),
        ("//cdn.boutique.example/i.jpg", "https://cdn.boutique.example/i.jpg"),  # protocol-relative: https
        ("javascript:alert(document.cookie)", None),
        ("JavaScript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("data:text/html;base64,PHNjcmlwdD4=", None),
        ("data:image/png;base64,iVBORw0KGgo=", None),
        ("vbscript:msgbox(1)", None),
        ("ftp://boutique.example/i.jpg", None),
        ("/products/carnet", None),  # relative: nowhere from a mailbox
        ("boutique.example/p", None),
        ("https://", None),
        ("https://boutique.example/a b", None),
        ("https://boutique.example/\nx", None),
        ("https://[::1", None),
        ("https://boutique.example/" + "a" * products.MAX_URL, None),
        ("", None),
        (None, None),
        (42, None),
        (["https://boutique.example"], None),
    ],
)
def test_only_absolute_http_urls_of_bounded_length_are_kept(given: object, kept: str | None) -> None:
    assert products.web_url(given) == kept


def test_a_line_has_every_key_and_bounded_text() -> None:
    line = products.line(name="  Carnet\n A5  " + "x" * 500, quantity=0, price=float("nan"), product_id=True)
    assert set(line) == {"name", "variant", "quantity", "price", "product_id", "image", "url"}
    assert line["name"].startswith("Carnet A5 x")
    assert len(line["name"]) == products.MAX_NAME
    assert [line[key] for key in ("quantity", "price", "product_id", "image", "url")] == [1, None, None, None, None]


def test_lines_keep_the_first_twenty() -> None:
    assert len(products.lines([{"name": f"p{n}"} for n in range(50)])) == products.MAX_LINES


def test_recommendations_drop_unsafe_links_and_nameless_items_and_keep_six() -> None:
    given: list[Any] = [
        {"name": "Recharges", "image": "data:image/svg+xml,<svg/>", "url": "javascript:void(0)", "price": 6.5},
        {"image": "https://boutique.example/i.jpg"},  # no name: nothing to show, no alt text
        {"name": "Gourde", "image_url": "https://boutique.example/g.jpg", "url": "https://boutique.example/g"},
    ] + [{"name": f"Produit {n}"} for n in range(10)]
    kept = products.recommendations(given)
    assert kept[0] == {"name": "Recharges", "image": None, "url": None, "price": "6.5"}
    assert kept[1] == {
        "name": "Gourde",
        "image": "https://boutique.example/g.jpg",  # Segment's spec's `image_url` is read too
        "url": "https://boutique.example/g",
        "price": None,
    }
    assert [item["name"] for item in kept[2:]] == ["Produit 0", "Produit 1", "Produit 2", "Produit 3"]


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({"lines": "Carnet"}, "properties.lines must be a list of objects"),
        ({"lines": [{"name": "Carnet"}, 3]}, r"properties.lines\[1\] must be an object"),
        ({"recommendations": {"name": "Gourde"}}, "properties.recommendations must be a list of objects"),
    ],
)
def test_a_shape_that_is_not_a_list_of_objects_names_the_field(properties: dict[str, Any], problem: str) -> None:
    with pytest.raises(products.ProductError, match=problem):
        products.clean(properties)


def test_clean_leaves_other_properties_and_absent_products_alone() -> None:
    assert products.clean({"form": "contact", "lines": None}) == {"form": "contact", "lines": None}


def test_a_cart_or_order_link_that_is_not_http_is_dropped_before_any_template_puts_it_in_an_href() -> None:
    cleaned = products.clean(
        {"recovery_url": "javascript:alert(1)", "status_url": "https://boutique.example/orders/1", "form": "x"}
    )
    assert cleaned == {"recovery_url": None, "status_url": "https://boutique.example/orders/1", "form": "x"}
