import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from infra import build, validation
from shared.messages.templates import TemplateProblem, html_to_text, render_email, render_sms
from tests.conftest import ROOT

CONTEXT: dict[str, Any] = {**validation.SAMPLE_CONTEXT}


@pytest.mark.parametrize(("locale", "subject"), [("fr", "Bienvenue, Camille !"), ("en", "Welcome, Camille!")])
def test_the_welcome_email_renders_in_both_locales(locale: str, subject: str) -> None:
    email = render_email("welcome/1-welcome", locale, CONTEXT)
    assert email.subject == subject
    assert email.locale == locale
    assert f'lang="{locale}"' in email.html


def test_without_a_first_name_the_greeting_falls_back() -> None:
    email = render_email("welcome/1-welcome", "fr", {**CONTEXT, "first_name": None})
    assert email.subject == "Bienvenue !"
    assert "Bonjour et bienvenue," in email.text


def test_an_unknown_locale_falls_back_to_a_shipped_one() -> None:
    assert render_email("welcome/1-welcome", "de", CONTEXT).locale in ("fr", "en")


def test_every_email_carries_the_sender_identity_postal_address_and_a_visible_unsubscribe_link() -> None:
    email = render_email("welcome/2-value", "fr", CONTEXT)
    assert "12 rue des Artisans, 75011 Paris" in email.html
    assert 'href="https://example.com/unsubscribe?t=sample"' in email.html
    assert "Se désinscrire (https://example.com/unsubscribe?t=sample)" in email.text


def test_contact_data_is_escaped_in_html() -> None:
    email = render_email("welcome/1-welcome", "en", {**CONTEXT, "first_name": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;" in email.html


def test_the_subject_is_plain_text_while_the_html_stays_escaped() -> None:
    email = render_email("welcome/1-welcome", "en", {**CONTEXT, "first_name": "O'Brien & Co <b>"})
    assert email.subject == "Welcome, O'Brien & Co <b>!"  # a header: no entities (not O&#39;Brien &amp; Co)
    assert "Hello O'Brien &amp; Co &lt;b&gt;," in email.html  # (the CSS inliner writes ' as is: it is text)
    assert "<title>Welcome, O'Brien &amp; Co &lt;b&gt;!</title>" in email.html
    assert "Hello O'Brien & Co <b>," in email.text


@pytest.mark.parametrize(
    ("first_name", "subject"),
    [
        ("Lou\r\nBcc: victim@example.com", "Welcome, Lou Bcc: victim@example.com!"),
        ("Lou\nSubject: pwned", "Welcome, Lou Subject: pwned!"),
        ("Lou\x00\x1b[31m", "Welcome, Lou [31m!"),
        ("Lou\u2028Bcc: x", "Welcome, Lou Bcc: x!"),
        ("  Lou \t  Dupont  ", "Welcome, Lou Dupont !"),  # collapsed, not rewritten
        ("&#13;&#10;Bcc: x", "Welcome, &#13;&#10;Bcc: x!"),  # an entity typed as text stays text
    ],
)
def test_control_characters_leave_the_subject_and_spaces_are_collapsed(first_name: str, subject: str) -> None:
    email = render_email("welcome/1-welcome", "en", {**CONTEXT, "first_name": first_name})
    assert email.subject == subject
    assert "\r" not in email.subject
    assert "\n" not in email.subject


def test_a_subject_written_with_entities_and_lines_by_the_marketer_reads_as_plain_text(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}\n{% block subject %}\n  Tom &amp; Jerry&nbsp;:\n  {{ name }}\n'
        "{% endblock %}\n{% block preheader %}{{ name }} &amp; co{% endblock %}\n"
        "{% block body %}<p>Hi</p>{% endblock %}\n",
    )
    email = render_email("broken", "en", {**CONTEXT, "name": "O'Brien"}, root)
    assert email.subject == "Tom & Jerry\xa0: O'Brien"
    assert email.preheader == "O'Brien & co"
    assert ">O'Brien &amp; co</span>" in email.html  # the inbox preview, escaped once (not &amp;amp;)


def test_the_text_part_is_derived_from_the_html_without_markup_or_styles() -> None:
    text = html_to_text(
        "<html><head><style>p{color:red}</style></head><body><p>Hello <b>you</b></p><ul>"
        "<li>one</li></ul><a href='https://x.example'>link</a></body></html>"
    )
    assert text == "Hello you\n\n- one\nlink (https://x.example)\n"


def broken(tmp_path: Path, body: str) -> Path:
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "email.html").write_text((ROOT / "templates/layouts/email.html").read_text())
    (tmp_path / "email").mkdir()
    for locale in ("fr", "en"):
        (tmp_path / "email" / f"broken.{locale}.html").write_text(body)
    return tmp_path


def test_a_syntax_error_is_reported_with_template_name_and_line(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}\n{% block subject %}Hi{% endblock %}\n'
        "{% block body %}\n<p>{% if %}</p>\n{% endblock %}\n",
    )
    with pytest.raises(TemplateProblem, match=r"email/broken\.fr\.html:4: "):
        render_email("broken", "fr", CONTEXT, root)


def test_a_missing_variable_is_reported_with_template_name_and_line(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}\n{% block subject %}Hi{% endblock %}\n'
        "{% block body %}\n\n<p>{{ coupon_code }}</p>\n{% endblock %}\n",
    )
    with pytest.raises(TemplateProblem, match=r"email/broken\.fr\.html:5: 'coupon_code' is undefined"):
        render_email("broken", "fr", CONTEXT, root)


def test_the_sandbox_refuses_unsafe_attribute_access(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}\n{% block subject %}Hi{% endblock %}\n'
        "{% block body %}{{ first_name.__class__.__mro__ }}{% endblock %}\n",
    )
    with pytest.raises(TemplateProblem, match=r"unsafe|undefined"):
        render_email("broken", "fr", CONTEXT, root)


def test_a_message_without_a_subject_is_refused(tmp_path: Path) -> None:
    root = broken(tmp_path, '{% extends "layouts/email.html" %}\n{% block body %}x{% endblock %}\n')
    with pytest.raises(TemplateProblem, match="subject"):
        render_email("broken", "fr", CONTEXT, root)


def test_validation_renders_every_shipped_template_without_problems() -> None:
    assert validation.templates(build.compile_all()) == []


def test_validation_names_the_broken_template_and_a_missing_locale(tmp_path: Path) -> None:
    root = broken(tmp_path, '{% extends "layouts/email.html" %}\n{% block subject %}{{ nope }}{% endblock %}\n')
    (root / "email" / "broken.en.html").unlink()
    problems = validation.templates(build.compile_all(), root)
    assert problems[0].startswith("templates/email/broken.fr.html:2: ")
    assert problems[1] == "templates/email/broken.en.html: missing (other locales fall back to it)"


SMS_CONTEXT: dict[str, Any] = {**validation.SMS_CONTEXT}


@pytest.mark.parametrize(
    ("locale", "start"),
    [("fr", "La Boutique : Camille, votre panier vous attend."), ("en", "La Boutique: Camille, your cart is waiting.")],
)
def test_the_cart_sms_renders_in_both_locales_as_plain_text(locale: str, start: str) -> None:
    sms = render_sms("abandoned-cart/1-reminder", locale, SMS_CONTEXT)
    assert sms.text.startswith(start)
    assert sms.text.endswith("https://boutique.example/checkouts/recover?key=sample")
    assert sms.locale == locale


def sms_root(tmp_path: Path, body: str, locales: tuple[str, ...] = ("fr", "en")) -> Path:
    (tmp_path / "sms").mkdir()
    for locale in locales:
        (tmp_path / "sms" / f"broken.{locale}.txt").write_text(body)
    return tmp_path


def test_an_sms_is_not_html_escaped(tmp_path: Path) -> None:
    root = sms_root(tmp_path, "{{ first_name }} & co: l'offre <3\n")
    sms = render_sms("broken", "fr", {**SMS_CONTEXT, "first_name": "D'Artagnan"}, root)
    assert sms.text == "D'Artagnan & co: l'offre <3"


def test_an_sms_falls_back_to_the_other_locale(tmp_path: Path) -> None:
    root = sms_root(tmp_path, "Hello\n", locales=("en",))
    assert render_sms("broken", "fr", SMS_CONTEXT, root).locale == "en"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("Bonjour\n{{ coupon_code }}\n", r"sms/broken\.fr\.txt:2: 'coupon_code' is undefined"),
        ("Bonjour\n\n{% if %}\n", r"sms/broken\.fr\.txt:3: "),
        ("{{ first_name.__class__.__mro__ }}", r"sms/broken\.fr\.txt:1: .*(unsafe|undefined)"),
        ("{# nothing #}\n", r"sms/broken\.fr\.txt: the SMS is empty"),
    ],
)
def test_an_sms_template_error_names_the_file_and_line(tmp_path: Path, body: str, where: str) -> None:
    with pytest.raises(TemplateProblem, match=where):
        render_sms("broken", "fr", SMS_CONTEXT, sms_root(tmp_path, body))


def test_validation_renders_sms_templates_and_names_the_broken_one_and_a_missing_locale(tmp_path: Path) -> None:
    root = broken(tmp_path, '{% extends "layouts/email.html" %}\n{% block subject %}Hi{% endblock %}\n')
    (root / "sms" / "cart").mkdir(parents=True)
    (root / "sms" / "cart" / "1-reminder.fr.txt").write_text("Votre panier\n{{ trigger.properties.nope }}\n")
    problems = validation.templates(build.compile_all(), root)
    assert problems == [
        "templates/sms/cart/1-reminder.fr.txt:2: 'dict object' has no attribute 'nope'",
        "templates/sms/cart/1-reminder.en.txt: missing (other locales fall back to it)",
    ]


def test_validation_reports_each_shipped_sms_encoding_and_segments_with_the_stop_mention() -> None:
    lines = [cost.line() for cost in validation.sms_costs(build.compile_all())]
    assert [line.split(":")[0] for line in lines] == [
        "templates/sms/abandoned-cart/1-reminder.en.txt",
        "templates/sms/abandoned-cart/1-reminder.fr.txt",
        "templates/sms/promotions/black-friday.en.txt",  # an SMS campaign's (README, Campaigns)
        "templates/sms/promotions/black-friday.fr.txt",
    ]
    assert all(", stop mention included)" in line and ": GSM-7, 1 segment (" in line for line in lines)


def sms_payload(template: str, category: str) -> str:
    """A compiled state machine with one send_sms Task, as the compiler writes it."""
    task = {
        "Type": "Task",
        "Parameters": {"Payload": {"action": "send_sms", "template": template, "category": category}},
    }
    return json.dumps({"States": {"S": task}})


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("marketing", "templates/sms/cart.fr.txt: GSM-7, 1 segment (26 septets, stop mention included)"),
        ("transactional", "templates/sms/cart.fr.txt: GSM-7, 1 segment (5 septets)"),
    ],
)
def test_a_transactional_sms_is_measured_without_the_stop_mention(tmp_path: Path, category: str, expected: str) -> None:
    root = sms_root(tmp_path, "Merci\n", locales=("fr",))
    (root / "sms" / "broken.fr.txt").rename(root / "sms" / "cart.fr.txt")
    compiled = build.Compiled({}, {"scenarios/compiled/x.asl.json": sms_payload("cart", category)})
    assert [cost.line() for cost in validation.sms_costs(compiled, root)] == [expected]


def test_an_sms_over_two_segments_is_a_warning_naming_what_made_it_ucs_2(tmp_path: Path) -> None:
    root = sms_root(tmp_path, "Votre thé est prêt, l’équipe vous attend. " * 3, locales=("fr",))
    [cost] = validation.sms_costs(build.compile_all(), root, stop_text="STOP au 36180")
    assert cost.warning
    assert cost.line() == (
        "warning: templates/sms/broken.fr.txt: UCS-2, because of 'ê', '’', 3 segments"
        " (139 UTF-16 units, stop mention included), more than 2 segments"
    )


def test_validate_prints_the_sms_costs_and_still_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    from infra.cli import main

    assert main(["validate"]) == 0
    assert "templates/sms/abandoned-cart/1-reminder.fr.txt: GSM-7, 1 segment" in capsys.readouterr().out


class _Elements(HTMLParser):
    """Each element's tag, class and style attribute, and the text of the <style> blocks left."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found.get("class") or "", found.get("style") or ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_the_layout_s_css_is_inlined_for_mail_clients_and_the_style_block_stays_for_its_media_queries() -> None:
    email = render_email("welcome/1-welcome", "fr", CONTEXT)
    found = elements(email.html)
    footer = [cls for _, cls, _ in found.elements].index("footer")
    footer_paragraphs = [style for tag, _, style in found.elements[footer:] if tag == "p"]
    assert len(footer_paragraphs) == 3  # the unsubscribe line, the preferences link, the sender's address
    assert all("color: #71717a" in style for style in footer_paragraphs)
    [body] = [style for tag, _, style in found.elements if tag == "body"]
    assert "font-family: Helvetica, Arial, sans-serif" in body
    [preheader] = [style for _, cls, style in found.elements if cls == "preheader"]
    assert "display: none" in preheader
    [kept] = found.styles  # the layout's block, kept for the clients that honour its responsive rules
    assert kept.count("@media") == 1


def test_an_inline_style_written_in_a_template_wins_over_the_layout_s_rule(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}{% block subject %}Hi{% endblock %}'
        '{% block footer %}<p style="color: #ff0000">Footer</p>{% endblock %}',
    )
    html = render_email("broken", "en", CONTEXT, root).html
    assert '<p style="color: #ff0000">Footer</p>' in html  # not the footer's grey


def test_a_linked_stylesheet_is_never_fetched_and_the_text_part_has_no_css(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        '{% extends "layouts/email.html" %}{% block subject %}Hi{% endblock %}'
        '{% block body %}<link rel="stylesheet" href="http://127.0.0.1:9/x.css"><p>Hello</p>{% endblock %}',
    )
    email = render_email("broken", "en", CONTEXT, root)
    assert "<link" not in email.html
    assert "Hello" in email.text
    assert "@media" not in email.text
    assert "color:" not in email.text


def scenarios_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A scenarios folder holding one shipped scenario, changed."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    text = (ROOT / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8")
    assert old in text
    (folder / f"{name}.yaml").write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_validation_names_a_template_showing_a_discount_in_a_step_without_one(tmp_path: Path) -> None:
    folder = scenarios_with(tmp_path, "loyalty", "        discount: {code: MERCI20}\n", "")
    problems = validation.templates(build.compile_all(folder))
    assert problems == [
        f"templates/email/loyalty/1-first-order-code.{locale}.html:3: uses `discount`, but step e1-first-order-code "
        "(scenarios/loyalty.yaml:21) has no `discount:`; add `discount: {code: ...}` or `discount: {pool: ...}` to "
        "that step"
        for locale in ("fr", "en")
    ]


def test_validation_names_a_step_giving_a_code_its_template_never_shows(tmp_path: Path) -> None:
    old = "    send_email: welcome/2-value\n"
    folder = scenarios_with(tmp_path, "welcome", old, old + "    discount: {pool: bienvenue}\n")
    assert validation.templates(build.compile_all(folder)) == [
        f"scenarios/welcome.yaml:19: step e2-value gives a discount code, but templates/email/welcome/2-value.{locale}"
        ".html never shows {{ discount.code }}"
        for locale in ("fr", "en")
    ]


def test_a_discount_code_renders_where_the_template_shows_it() -> None:
    rendered = render_email(
        "abandoned-cart/3-offer", "fr", {**CONTEXT, "discount": {"code": "PANIER-X7", "pool": None}}
    )
    assert "<strong>PANIER-X7</strong>" in rendered.html
    assert "PANIER-X7" in rendered.text


class _Tags(HTMLParser):
    """The <a> and <img> tags of a rendered email, their attributes as given."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str | None] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href"))
        if tag == "img":
            self.images.append(dict(attrs))


def cart(*lines: dict[str, Any], **properties: Any) -> dict[str, Any]:
    trigger = {**CONTEXT["trigger"], "properties": {**CONTEXT["trigger"]["properties"], "lines": list(lines)}}
    trigger["properties"].update(properties)
    return {**CONTEXT, "trigger": trigger}


CARNET = {
    "name": "Carnet A5",
    "variant": "Kraft",
    "quantity": 2,
    "price": "14.95",
    "product_id": 1,
    "image": "https://boutique.example/img/carnet.jpg",
    "url": "https://boutique.example/p/carnet",
}


def test_a_cart_line_shows_its_image_and_links_name_and_image_to_the_product() -> None:
    email = render_email("abandoned-cart/1-reminder", "en", cart(CARNET))
    tags = _Tags(email.html)
    [image] = tags.images
    assert image["src"] == "https://boutique.example/img/carnet.jpg"
    assert (image["alt"], image["width"], image["height"]) == ("Carnet A5", "80", "80")
    assert "display:block" in (image["style"] or "")
    assert tags.links.count("https://boutique.example/p/carnet") == 2  # the image and the name
    assert "Carnet A5 (https://boutique.example/p/carnet) · Kraft" in email.text  # the image's link adds nothing


def test_a_cart_line_without_image_nor_url_renders_as_before() -> None:
    line = {key: value for key, value in CARNET.items() if key not in ("image", "url")}  # as an older event's
    email = render_email("abandoned-cart/1-reminder", "fr", cart(line))
    tags = _Tags(email.html)
    assert tags.images == []
    assert "https://boutique.example/p/carnet" not in tags.links
    assert "Carnet A5 · Kraft\nQuantité 2 14.95 EUR" in email.text


def test_a_line_with_an_image_keeps_the_rows_aligned_for_lines_without() -> None:
    other = {**CARNET, "name": "Stylo", "image": None, "url": None}
    html = render_email("post-purchase/1-thanks", "en", cart(CARNET, other)).html
    rows = html.split("<tr>")
    assert [row.count("<td") for row in rows if "Quantity" in row] == [3, 3]


def test_a_product_name_with_html_is_escaped() -> None:
    email = render_email("post-purchase/1-thanks", "en", cart({**CARNET, "name": '<b onmouseover="x()">Carnet</b>'}))
    tags = _Tags(email.html)
    assert "b" not in tags.tags  # no element from the name: it is text
    assert '&lt;b onmouseover="x()"&gt;Carnet&lt;/b&gt;</a>' in email.html
    assert tags.images[0]["alt"] == '<b onmouseover="x()">Carnet</b>'  # the quotes escaped: it stays the alt text
    assert '<b onmouseover="x()">Carnet</b> (https://boutique.example/p/carnet) · Kraft' in email.text


def test_a_javascript_link_recorded_before_the_sources_cleaned_it_is_not_rendered() -> None:
    line = {**CARNET, "url": "javascript:alert(1)", "image": "data:image/svg+xml,<svg onload=alert(1)>"}
    email = render_email("abandoned-cart/1-reminder", "en", cart(line))
    assert "javascript:" not in email.html
    assert "data:image" not in email.html
    assert "Carnet A5" in email.text


@pytest.mark.parametrize(("locale", "link_word"), [("fr", "Découvrir"), ("en", "See it")])
def test_the_cross_sell_shows_the_recommended_products_in_a_grid(locale: str, link_word: str) -> None:
    email = render_email("post-purchase/4-cross-sell", locale, CONTEXT)
    tags = _Tags(email.html)
    assert [image["src"] for image in tags.images] == ["https://boutique.example/images/recharges.jpg"]
    assert tags.images[0]["alt"] == "Recharges d'encre (x6)"
    assert tags.links.count("https://boutique.example/products/recharges") == 3  # image, name, button
    assert f"{link_word} (https://boutique.example/products/recharges)" in email.text
    assert "6.50 EUR" in email.text
    assert "Étui en cuir" in email.text  # no image, no link, no price: its name still shows


def test_without_recommendations_the_cross_sell_falls_back_to_its_copy() -> None:
    email = render_email("post-purchase/4-cross-sell", "en", validation.BARE_PRODUCTS_CONTEXT)
    assert "Customers who chose Carnet A5 pointillé also like our selection" in email.text
    assert _Tags(email.html).images == []
