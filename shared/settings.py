"""Configuration, validated once per container from the environment the template gives each function."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from shared.clock import Clock

SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9-]{1,11}$")  # what SNS accepts as AWS.SNS.SMS.SenderID


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed: the deployment is wrong, not the request."""


@dataclass(frozen=True)
class Settings:
    region: str
    contacts_table: str
    identities_table: str
    events_table: str
    sends_table: str
    enrolments_table: str
    dates_table: str
    suppressions_table: str  # hashed addresses never mailed again (shared.people.suppression)
    discount_codes_table: str  # pools of unique discount codes (shared.messages.discounts)
    list_members_table: str  # who is in each list, static or dynamic (shared.people.lists)
    idempotency_table: str
    reports_table: str  # what each scenario did, per day, step and variant (shared.reports.store)
    queue_url: str
    state_machine_prefix: str
    from_address: str
    configuration_set: str
    public_base_url: str
    sender_name: str
    postal_address: str
    default_locale: str
    default_timezone: str
    event_retention_days: int
    time_scale: float
    clock_epoch: float
    shopify_secret: str | None
    shopify_secret_parameter: str | None
    link_secret: str | None  # the keys that sign email links, current first (a rotation: new,old; shared.people.links)
    link_secret_parameter: str | None
    # The other sources' secrets: WooCommerce's webhook secret, the generic webhooks' secrets (comma-separated: the
    # new one and the old one during a rotation) and the tracking API's write key. Unset: that route answers 503.
    woocommerce_secret: str | None = None
    woocommerce_secret_parameter: str | None = None
    generic_secret: str | None = None
    generic_secret_parameter: str | None = None
    write_key: str | None = None
    write_key_parameter: str | None = None
    # Days a prospect (no order) is kept after their last contact before the daily run erases them (retention)
    prospect_retention_days: int = 1095
    browser_key: str | None = None  # public (it sits in web pages): reports behaviour only (shared.sources.tracking)
    # SMS (REQUIREMENTS.md, SMS out): the sender id shown on phones, if any, and the opt-out mention every
    # marketing SMS ends with (a French short code such as "STOP au 36xxx" is the provider's; the default names
    # the STOP keyword SNS honours on replies).
    sms_sender_id: str | None = None
    sms_stop_text: str = "STOP : répondez STOP"
    # The CRM notified by notify_crm steps (none: those steps are skipped) and its signing secret.
    crm_url: str | None = None
    crm_secret: str | None = None
    crm_secret_parameter: str | None = None
    # Processing (REQUIREMENTS.md, Processing): where the process function puts what it cannot handle, and the
    # queue's maxReceiveCount, so a transient failure on its last allowed receive goes there with its reason.
    dead_letter_queue_url: str | None = None
    max_receive_count: int = 5
    # The CRM handoff of qualified leads (shared.people.handoff): its queue (the process function sends to it), the
    # queue where a handoff that cannot be delivered waits with its reason, the receives before it goes there, and the
    # EventBridge bus `contact.qualified` is put on.
    handoff_queue_url: str | None = None
    handoff_dead_letter_queue_url: str | None = None
    handoff_max_receive_count: int = 12
    event_bus_name: str = "default"
    clock_start: float | None = None  # the local runtime's simulated start, when it begins on a chosen day
    schedule_queue_url: str | None = None  # the daily run's pages (shared.journeys.schedule): its two functions only
    # Shopify's customers/data_request answered by the process function (shared.journeys.privacy): the bucket the
    # person's file is written to, and the alarm topic the operator is told on (ids only). Unset: the operator's job.
    data_requests_bucket: str | None = None
    alarm_topic_arn: str | None = None
    # The key of the suppression hash (HMAC-SHA-256 of an address, shared.people.suppression): one per deployment,
    # never rotated. Given only to the functions that hash an address; unset there, they fail closed.
    suppression_key: str | None = None
    suppression_key_parameter: str | None = None
    # Revenue attribution (shared.reports.attribution): an order goes to the scenario email the person last clicked
    # within this many days, and separately to the one last opened within this many hours.
    attribution_click_days: int = 5
    attribution_open_hours: int = 24
    # Campaigns (shared.campaigns): their table and queue (the admin and campaign functions only), and the sending
    # rate, emails per second (SES's account quota: 14 on a new production account)
    campaigns_table: str | None = None
    campaign_queue_url: str | None = None
    campaign_rate: float = 14.0
    campaign_sms_rate: float = 20.0  # an SMS campaign's, SMS per second (SNS's account quota for SMS)

    def clock(self) -> Clock:
        return Clock(scale=self.time_scale, epoch=self.clock_epoch, start=self.clock_start)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {name} is required")
            return value

        def number(name: str, default: str) -> float:
            raw = env.get(name, default)
            try:
                return float(raw)
            except ValueError:
                raise ConfigurationError(f"environment variable {name} must be a number, got {raw!r}") from None

        scale = number("PARCOURS_TIME_SCALE", "1")
        if number("PARCOURS_PROSPECT_RETENTION_DAYS", "1095") < 1:
            raise ConfigurationError("PARCOURS_PROSPECT_RETENTION_DAYS must be at least 1")
        if scale <= 0:
            raise ConfigurationError("PARCOURS_TIME_SCALE must be positive")
        locale = env.get("PARCOURS_DEFAULT_LOCALE", "fr")
        if locale not in ("fr", "en"):
            raise ConfigurationError(f"PARCOURS_DEFAULT_LOCALE must be fr or en, got {locale!r}")
        crm_url = env.get("PARCOURS_CRM_URL", "").strip() or None
        if crm_url is not None and not crm_url.startswith(("https://", "http://")):
            raise ConfigurationError(f"PARCOURS_CRM_URL must be an http(s) URL, got {crm_url!r}")
        sender_id = env.get("PARCOURS_SMS_SENDER_ID", "").strip() or None
        if sender_id is not None and not SENDER_ID.match(sender_id):
            raise ConfigurationError(
                f"PARCOURS_SMS_SENDER_ID must be 1 to 11 letters, digits or hyphens with a letter, got {sender_id!r}"
            )

        def receive_count(name: str, default: str) -> int:
            receives = number(name, default)
            if receives < 1 or receives != int(receives):
                raise ConfigurationError(f"{name} must be a whole number, 1 or more, got {receives:g}")
            return int(receives)

        def window(name: str, default: str, most: int) -> int:
            value = number(name, default)
            if value < 0 or value != int(value) or value > most:
                raise ConfigurationError(f"{name} must be a whole number from 0 to {most}, got {value:g}")
            return int(value)

        rate = number("PARCOURS_CAMPAIGN_RATE", "14")
        if rate <= 0:
            raise ConfigurationError(f"PARCOURS_CAMPAIGN_RATE must be positive (emails per second), got {rate:g}")
        sms_rate = number("PARCOURS_CAMPAIGN_SMS_RATE", "20")
        if sms_rate <= 0:
            raise ConfigurationError(f"PARCOURS_CAMPAIGN_SMS_RATE must be positive (SMS per second), got {sms_rate:g}")
        receives = receive_count("PARCOURS_MAX_RECEIVE_COUNT", "5")
        handoff_receives = receive_count("PARCOURS_HANDOFF_MAX_RECEIVE_COUNT", "12")
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or need("AWS_REGION"),
            contacts_table=need("PARCOURS_CONTACTS_TABLE"),
            identities_table=need("PARCOURS_IDENTITIES_TABLE"),
            events_table=need("PARCOURS_EVENTS_TABLE"),
            sends_table=need("PARCOURS_SENDS_TABLE"),
            enrolments_table=need("PARCOURS_ENROLMENTS_TABLE"),
            dates_table=need("PARCOURS_DATES_TABLE"),
            suppressions_table=need("PARCOURS_SUPPRESSIONS_TABLE"),
            discount_codes_table=need("PARCOURS_DISCOUNT_CODES_TABLE"),
            list_members_table=need("PARCOURS_LIST_MEMBERS_TABLE"),
            idempotency_table=need("PARCOURS_IDEMPOTENCY_TABLE"),
            reports_table=need("PARCOURS_REPORTS_TABLE"),
            queue_url=need("PARCOURS_QUEUE_URL"),
            state_machine_prefix=need("PARCOURS_STATE_MACHINE_PREFIX"),
            from_address=need("PARCOURS_FROM_ADDRESS"),
            configuration_set=need("PARCOURS_CONFIGURATION_SET"),
            public_base_url=need("PARCOURS_PUBLIC_BASE_URL").rstrip("/"),
            sender_name=need("PARCOURS_SENDER_NAME"),
            postal_address=need("PARCOURS_POSTAL_ADDRESS"),
            default_locale=locale,
            default_timezone=env.get("PARCOURS_DEFAULT_TIMEZONE", "Europe/Paris"),
            event_retention_days=int(number("PARCOURS_EVENT_RETENTION_DAYS", "1095")),
            prospect_retention_days=int(number("PARCOURS_PROSPECT_RETENTION_DAYS", "1095")),
            time_scale=scale,
            clock_epoch=number("PARCOURS_CLOCK_EPOCH", "0"),
            clock_start=number("PARCOURS_CLOCK_START", "0") if env.get("PARCOURS_CLOCK_START") else None,
            shopify_secret=env.get("PARCOURS_SHOPIFY_SECRET") or None,
            shopify_secret_parameter=env.get("PARCOURS_SHOPIFY_SECRET_PARAMETER") or None,
            link_secret=env.get("PARCOURS_LINK_SECRET") or None,
            link_secret_parameter=env.get("PARCOURS_LINK_SECRET_PARAMETER") or None,
            woocommerce_secret=env.get("PARCOURS_WOOCOMMERCE_SECRET") or None,
            woocommerce_secret_parameter=env.get("PARCOURS_WOOCOMMERCE_SECRET_PARAMETER") or None,
            generic_secret=env.get("PARCOURS_GENERIC_SECRET") or None,
            generic_secret_parameter=env.get("PARCOURS_GENERIC_SECRET_PARAMETER") or None,
            write_key=env.get("PARCOURS_WRITE_KEY") or None,
            write_key_parameter=env.get("PARCOURS_WRITE_KEY_PARAMETER") or None,
            browser_key=env.get("PARCOURS_BROWSER_KEY") or None,
            sms_sender_id=sender_id,
            sms_stop_text=env.get("PARCOURS_SMS_STOP_TEXT", "").strip() or cls.sms_stop_text,
            crm_url=crm_url,
            crm_secret=env.get("PARCOURS_CRM_SECRET") or None,
            crm_secret_parameter=env.get("PARCOURS_CRM_SECRET_PARAMETER") or None,
            dead_letter_queue_url=env.get("PARCOURS_DEAD_LETTER_QUEUE_URL", "").strip() or None,
            max_receive_count=receives,
            schedule_queue_url=env.get("PARCOURS_SCHEDULE_QUEUE_URL", "").strip() or None,
            handoff_queue_url=env.get("PARCOURS_HANDOFF_QUEUE_URL", "").strip() or None,
            handoff_dead_letter_queue_url=env.get("PARCOURS_HANDOFF_DEAD_LETTER_QUEUE_URL", "").strip() or None,
            handoff_max_receive_count=handoff_receives,
            event_bus_name=env.get("PARCOURS_EVENT_BUS_NAME", "").strip() or "default",
            data_requests_bucket=env.get("PARCOURS_DATA_REQUESTS_BUCKET", "").strip() or None,
            alarm_topic_arn=env.get("PARCOURS_ALARM_TOPIC_ARN", "").strip() or None,
            suppression_key=env.get("PARCOURS_SUPPRESSION_KEY") or None,
            suppression_key_parameter=env.get("PARCOURS_SUPPRESSION_KEY_PARAMETER") or None,
            attribution_click_days=window("PARCOURS_ATTRIBUTION_CLICK_DAYS", "5", 90),
            attribution_open_hours=window("PARCOURS_ATTRIBUTION_OPEN_HOURS", "24", 90 * 24),
            campaigns_table=env.get("PARCOURS_CAMPAIGNS_TABLE", "").strip() or None,
            campaign_queue_url=env.get("PARCOURS_CAMPAIGN_QUEUE_URL", "").strip() or None,
            campaign_rate=rate,
            campaign_sms_rate=sms_rate,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read on first use (never at import time)."""
    return Settings.from_environ(os.environ)
