"""The outbox: what the local stack sent, read back from the emulated SES and SNS (`GET /_local/outbox`, and
`/_local/outbox.html` to look at it), in the local runtime contract's shape."""

from __future__ import annotations

import heapq
import html
import json
import re
from datetime import datetime
from email import message_from_string
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

from infra.local.state import ACCOUNT, REGION, State


class Outbox(State):
    def outbox(self) -> list[dict[str, Any]]:
        """Every message SES and SNS accepted, oldest first (the local runtime contract's shape)."""
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        accepted = self._accepted
        emails = [
            (accepted.get(message.id, -1), {**_email_entry(message.raw_data), "message_id": message.id})
            for message in list(ses_backends[ACCOUNT][REGION].sent_messages)
            if hasattr(message, "raw_data")
        ]
        published = list(sns_backends[ACCOUNT][REGION].sms_messages.items())
        records = self._sms_records() if published else {}
        texts = [
            (
                accepted.get(message_id, -1),
                _sms_entry(phone, text, records[message_id], self._sms_attributes.get(message_id, {})),
            )
            for message_id, (phone, text) in published
            if message_id in records  # recorded as sent a moment after SNS accepted it
        ]
        # Each list is in the order SES or SNS accepted its messages: merged on that order. Not on `sent_at`: it is
        # the instant on each execution's own timeline (see emulation.py), and an email's Date header has only seconds.
        return [entry for _, entry in heapq.merge(emails, texts, key=lambda ranked: ranked[0])]

    def _sms_records(self) -> dict[str, dict[str, Any]]:
        """The send records of SMS (scenario, step, when), by SNS message id: moto keeps only number and text."""

        dynamodb = self.client("dynamodb")
        records: dict[str, dict[str, Any]] = {}
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self._sends_table,
            FilterExpression="channel = :sms AND attribute_exists(message_id)",
            ExpressionAttributeValues={":sms": {"S": "sms"}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                records[item["message_id"]["S"]] = {
                    "scenario": item["scenario"]["S"],
                    "step": item["step"]["S"],
                    "sent_at": item["sent_at"]["S"] if "sent_at" in item else None,
                    "segments": int(item["segments"]["N"]) if "segments" in item else None,
                    "encoding": item["encoding"]["S"] if "encoding" in item else None,
                }
        return records


def _part(message: Message, subtype: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}" and not part.is_multipart():
            if part.get("Content-Transfer-Encoding", "").lower() in ("8bit", "binary"):
                # Short lines are sent as 8bit (Python's email picks it when no line needs folding): the message
                # was read from text, so its part is text already (decoding it again would take UTF-8 for Latin-1)
                return str(part.get_payload())
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return None


def _email_entry(raw: str) -> dict[str, Any]:
    from email.header import decode_header, make_header

    message = message_from_string(raw)

    def header(name: str) -> str | None:
        value = message.get(name)
        if value is None:
            return None
        decoded = str(make_header(decode_header(value)))
        return re.sub(r"\r?\n(?=[ \t])", "", decoded).strip()  # a long header is folded (RFC 5322 2.2.3)

    date = message.get("Date")
    return {
        "channel": "email",
        "to": parseaddr(header("To") or "")[1],
        "from": header("From"),
        "subject": header("Subject"),
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
        "headers": {name: str(make_header(decode_header(value))) for name, value in message.items()},
        "scenario": message.get("X-Parcours-Scenario"),
        "step": message.get("X-Parcours-Step"),
        "sent_at": parsedate_to_datetime(date).isoformat() if date else None,
    }


def _sms_entry(phone: str, text: str, record: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    sender = attributes.get("AWS.SNS.SMS.SenderID", {}).get("Value")
    sent_at = record["sent_at"]
    return {
        "channel": "sms",
        "to": phone,
        "from": sender,
        "subject": None,
        "text": text,
        "html": None,
        "headers": {},
        "scenario": record["scenario"],
        "step": record["step"],
        # To the second, as an email's Date header: two messages of one step may be milliseconds apart.
        "sent_at": datetime.fromisoformat(sent_at).replace(microsecond=0).isoformat() if sent_at else None,
        "segments": record["segments"],  # what the SMS costs
        "encoding": record["encoding"],
    }


def outbox_page(messages: list[dict[str, Any]]) -> bytes:
    rows = []
    for number, item in enumerate(reversed(messages), start=1):
        summary = (
            f" → {html.escape(item['to'] or '')} · "
            f"{html.escape(item['scenario'] or '')}/{html.escape(item['step'] or '')} · "
            f"{html.escape(item['sent_at'] or '')}</summary>"
        )
        if item["channel"] == "sms":
            rows.append(
                f"<details><summary><b>SMS</b> ({item['encoding']}, {item['segments']} segment(s)) from "
                f"{html.escape(item['from'] or '(no sender id)')}{summary}"
                f"<pre style='white-space:pre-wrap'>{html.escape(item['text'] or '')}</pre></details>"
            )
            continue
        rows.append(
            f"<details><summary><b>{html.escape(item['subject'] or '')}</b>{summary}"
            f"<iframe title='message {number}' sandbox srcdoc=\"{html.escape(item['html'] or '', quote=True)}\" "
            "style='width:100%;height:480px;border:1px solid #ccc'></iframe>"
            f"<pre>{html.escape(json.dumps(item['headers'], indent=1, ensure_ascii=False))}</pre></details>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>parcours outbox</title>"
        "<body style='font-family:sans-serif;max-width:960px;margin:2em auto'>"
        f"<h1>Outbox ({len(messages)} sent, newest first)</h1>{''.join(rows) or '<p>Nothing sent yet.</p>'}</body>"
    )
    return page.encode()
