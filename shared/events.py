"""The event catalogue every source maps into, and the envelope that travels on the queue.

Catalogue (this increment): `contact.subscribed` (a new contact signed up), `contact.updated`,
`checkout.started` / `checkout.updated` (a checkout, abandoned until an order follows: recovery URL and items),
`order.placed`, `order.paid`, `order.refunded` / `order.cancelled` (a shop gave money back, or cancelled the
order: a scenario may start on them, e.g. a "sorry to see you return it" email), `scenario.requested` (an explicit
start through the API), `list.joined` /
`list.left` / `score.changed` (emitted by parcours' own actions), `stage.changed` / `contact.qualified` (emitted
by the scoring when a contact's lifecycle stage moves forward, and when it becomes a sales-qualified lead),
`email.opened` / `email.clicked` (SES feedback on a message a scenario sent; they also keep the contact's
engagement day), `email.delivered`,
`email.bounced`, `email.complained`, `email.rejected`, `email.rendering_failed` (the other SES feedback),
`page.viewed` (a page the contact visited), `form.submitted` (a form sent on the site), `track` (any other
tracking-API event: its name in the property `event`), `date.reached` / `contact.inactive` (emitted by the daily
schedule), and `unrecognised` (a verified delivery whose topic parcours does not act on: recorded, no effect).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

CONTACT_SUBSCRIBED = "contact.subscribed"
CONTACT_UPDATED = "contact.updated"
CHECKOUT_STARTED = "checkout.started"
CHECKOUT_UPDATED = "checkout.updated"
ORDER_PLACED = "order.placed"
ORDER_PAID = "order.paid"
# A refund (Shopify refunds/create, WooCommerce `refunded`): properties order_id, refund_id, amount (a decimal string,
# what was given back), currency. A cancellation (Shopify orders/cancelled, WooCommerce `cancelled`): order_id,
# amount (the order's total), currency. Both reduce the contact's counters and the revenue reports attribute.
ORDER_REFUNDED = "order.refunded"
ORDER_CANCELLED = "order.cancelled"
SCENARIO_REQUESTED = "scenario.requested"  # an explicit start through the API (`trigger: {api: true}`)
LIST_JOINED = "list.joined"  # emitted by parcours itself when a scenario adds a contact to a list
LIST_LEFT = "list.left"
SCORE_CHANGED = "score.changed"  # properties old, new, points: `where: {old: {lt: 50}, new: {gte: 50}}` crosses 50
# ... and reason: the scoring rule's id, `decay`, or the add_score step (shared.people.scoring)
STAGE_CHANGED = "stage.changed"  # properties old, new, score: the lifecycle stage moved forward (shared.people.scoring)
CONTACT_QUALIFIED = "contact.qualified"  # properties score, stage ("sql"), qualified_at (ISO): the lead became SQL
EMAIL_OPENED = "email.opened"  # properties scenario, step, variant, message_id (from the SES message tags)
EMAIL_CLICKED = "email.clicked"  # the same, and link; an open or a click moves the contact's engagement day
EMAIL_DELIVERED = "email.delivered"  # the same properties as email.opened
EMAIL_BOUNCED = "email.bounced"  # and bounce_type (Permanent | Transient | Undetermined), bounce_subtype
EMAIL_COMPLAINED = "email.complained"  # and feedback_type (abuse, ...) when the mailbox provider says
EMAIL_REJECTED = "email.rejected"  # SES refused the accepted message (a virus): and reason
EMAIL_RENDERING_FAILED = "email.rendering_failed"  # SES could not render it: and template_name, error
# The person unsubscribed through the link of an email a scenario sent: scenario, step, variant (from the link) and
# how (page or one-click). Written by the unsubscribe route into the contact's history, counted by the reports; not in
# the catalogue (no scenario starts on it: the person just asked for no more marketing).
EMAIL_UNSUBSCRIBED = "email.unsubscribed"
PAGE_VIEWED = "page.viewed"  # properties url, path, title, referrer
FORM_SUBMITTED = "form.submitted"  # properties form (its name) and what the site passes
TRACK = "track"  # a custom event: property event names it (`where: {event: "Ebook Downloaded"}`)
DATE_REACHED = "date.reached"  # the daily schedule: attribute, date, time, offset_days, anniversary, years, moment
CONTACT_INACTIVE = "contact.inactive"  # the daily schedule: days, since (no open, click nor signup since that day)
UNRECOGNISED = "unrecognised"
# A shop's GDPR request (Shopify's mandatory compliance topics): recorded apart with ids only, counted and alarmed
# for the operator; no scenario acts on it (not in the catalogue).
COMPLIANCE_REQUESTED = "compliance.requested"
# A contact read from an imported file (shared.sources.imports) without `--start-scenarios`: processed like any
# contact's facts (consent, lists, identities), but no scenario can be triggered by it (not in the catalogue).
CONTACT_IMPORTED = "contact.imported"
CATALOGUE = (
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    ORDER_PLACED,
    ORDER_PAID,
    ORDER_REFUNDED,
    ORDER_CANCELLED,
    SCENARIO_REQUESTED,
    LIST_JOINED,
    LIST_LEFT,
    SCORE_CHANGED,
    STAGE_CHANGED,
    CONTACT_QUALIFIED,
    EMAIL_OPENED,
    EMAIL_CLICKED,
    EMAIL_DELIVERED,
    EMAIL_BOUNCED,
    EMAIL_COMPLAINED,
    EMAIL_REJECTED,
    EMAIL_RENDERING_FAILED,
    PAGE_VIEWED,
    FORM_SUBMITTED,
    TRACK,
    DATE_REACHED,
    CONTACT_INACTIVE,
)
SCHEDULED = (DATE_REACHED, CONTACT_INACTIVE)  # written as `trigger: {date: ...}` / `{inactive: ...}`, not `event:`


class PayloadError(ValueError):
    """A verified delivery that is not the source's documented shape; the message names the header or field."""


@dataclass(frozen=True)
class ConsentFacts:
    """What a source said about marketing consent; absent facts never grant consent."""

    state: str  # granted | denied | unknown
    level: str | None
    at: str  # ISO 8601
    source: str
    wording: str | None = None  # the text or version of the form the person agreed to, when the source says
    # The source stated when the consent itself was given or withdrawn (Shopify's consent_updated_at, the tracking
    # API's, a generic webhook's `at`), not a time parcours put in for it: only such a grant undoes a denial.
    explicit: bool = True


@dataclass(frozen=True)
class ContactFacts:
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    source_id: str | None = None  # e.g. "shopify#7281290"
    contact_id: str | None = None  # parcours' own id, on the events parcours emits about a known contact
    email_consent: ConsentFacts | None = None
    updated_at: str | None = None
    phone: str | None = None  # E.164 only (see normalise_phone); anything else is dropped by the source mapping
    sms_consent: ConsentFacts | None = None
    attributes: dict[str, Any] | None = None  # custom attributes (birthday, timezone, ...), merged into the contact
    # A tracking visitor's anonymousId: alone, it finds a contact only once an identify merged it
    # (shared.people.contacts); beside an email, phone or source id, it is merged into that contact.
    anonymous_id: str | None = None
    # False when the facts come from a source not trusted for identity (the tracking API's public browser key): they
    # never change the email or phone of a contact that has one (shared.people.contacts).
    identity_trusted: bool = True


@dataclass(frozen=True)
class Event:
    event_id: str  # source-scoped, e.g. "shopify#<X-Shopify-Event-Id>": the idempotency key
    type: str
    source: str
    topic: str
    occurred_at: str
    received_at: str
    contact: ContactFacts | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    # How many events led to this one in its causal chain: 0 for what a source sent, the cause's + 1 for what
    # parcours emits while processing it or from an execution it started (shared.sources.ingestion.CHAIN_LIMIT)
    chain: int = 0

    def to_json(self) -> str:
        data = dict(vars(self))  # dumped at once: no deep copy (asdict), which cost 3 % of processing an event
        if self.contact is not None:
            data["contact"] = contact = dict(vars(self.contact))
            for name in ("email_consent", "sms_consent"):
                contact[name] = vars(contact[name]) if contact[name] is not None else None
        if not self.chain:
            del data["chain"]  # a source's event travels as it always did
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        contact = data.get("contact")
        facts = None
        if contact is not None:
            consent = contact.get("email_consent")
            sms_consent = contact.get("sms_consent")
            facts = ContactFacts(
                **{
                    **contact,
                    "email_consent": ConsentFacts(**consent) if consent else None,
                    "sms_consent": ConsentFacts(**sms_consent) if sms_consent else None,
                },
            )
        return cls(**{**data, "contact": facts})

    @classmethod
    def from_json(cls, body: str) -> Event:
        return cls.from_dict(json.loads(body))

    def contact_key(self) -> str:
        """What groups this event's messages on the FIFO queue: one contact's events stay in order.

        A tracked visitor's messages are grouped by its anonymousId, so the page views it made before an identify
        are processed before the identify that merges them (and those after it, after)."""
        if self.contact is not None:
            if self.contact.anonymous_id:
                return "anonymous#" + self.contact.anonymous_id
            if self.contact.email:
                return "email#" + self.contact.email
            if self.contact.source_id:
                return self.contact.source_id
            if self.contact.contact_id:
                return "contact#" + self.contact.contact_id
        return "source#" + self.source


def normalise_email(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or "." not in domain or " " in email:
        return None
    return email


E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")  # ITU-T E.164: + country code, at most 15 digits in all


def normalise_phone(raw: object) -> str | None:
    """`+33 6 12-34.56.78`, `+33 (0)6 12 34 56 78` or `0033612345678` -> `+33612345678`; None for anything that is
    not E.164 (a national number such as 06 12 34 56 78 says nothing of its country: never guessed)."""
    if not isinstance(raw, str):
        return None
    phone = re.sub(r"[\s.\-()/]", "", raw.replace("(0)", ""))  # (0): the trunk prefix, dialled only at home
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if E164.match(phone) else None
