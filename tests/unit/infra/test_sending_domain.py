"""template.yaml's sending domain: the From domain's SES identity, the DNS records it outputs, the reputation alarms.

The outputs are resolved here for a given From address (CloudFormation's Select, Split, Sub and If, with the
identity's DKIM tokens as placeholders) so the tests read the records an operator would copy into DNS.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra import samtemplate

REGION = "eu-west-3"


def _condition(template: dict[str, Any], name: str, parameters: dict[str, str]) -> bool:
    return bool(_resolve(template["Conditions"][name], template, parameters))


def _resolve(node: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """The few intrinsic functions the sending-domain outputs use, as CloudFormation evaluates them."""
    if isinstance(node, list):
        return [_resolve(item, template, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        name = node["Ref"]
        if name == "AWS::Region":
            return REGION
        if name in template["Parameters"]:
            return parameters.get(name, template["Parameters"][name].get("Default"))
        return f"<{name}>"  # a resource or another pseudo parameter
    if "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{resource}.{attribute}>"
    if "Fn::Select" in node:
        index, items = _resolve(node["Fn::Select"], template, parameters)
        return items[int(index)]
    if "Fn::Split" in node:
        separator, text = _resolve(node["Fn::Split"], template, parameters)
        return text.split(separator)
    if "Fn::Equals" in node:
        left, right = _resolve(node["Fn::Equals"], template, parameters)
        return left == right
    if "Fn::Not" in node:
        return not _resolve(node["Fn::Not"][0], template, parameters)
    if "Fn::If" in node:
        name, then, otherwise = node["Fn::If"]
        return _resolve(then if _condition(template, name, parameters) else otherwise, template, parameters)
    if "Fn::Sub" in node:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        values = {key: _resolve(value, template, parameters) for key, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                return str(_resolve({"Fn::GetAtt": name.split(".", 1)}, template, parameters))
            return str(_resolve({"Ref": name}, template, parameters))

        return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", substitute, text)
    raise AssertionError(f"unexpected intrinsic function: {node}")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return samtemplate.load()


def _outputs(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """The outputs CloudFormation would show for these parameters, skipping those whose condition is false."""
    shown = {}
    for name, output in template["Outputs"].items():
        if "Condition" in output and not _condition(template, output["Condition"], parameters):
            continue
        shown[name] = _resolve(output["Value"], template, parameters)
    return shown


def test_the_from_domain_becomes_an_ses_identity_signed_with_2048_bit_dkim_and_the_stacks_configuration_set(
    template: dict[str, Any],
) -> None:
    identity = template["Resources"]["EmailIdentity"]
    assert identity["Type"] == "AWS::SES::EmailIdentity"
    props = identity["Properties"]
    parameters = {"SenderEmail": "bonjour@boutique.example"}
    assert _resolve(props["EmailIdentity"], template, parameters) == "boutique.example"
    assert props["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert props["ConfigurationSetAttributes"] == {"ConfigurationSetName": {"Ref": "EmailConfigurationSet"}}


def test_the_mail_from_domain_is_under_the_from_domain_so_spf_aligns(template: dict[str, Any]) -> None:
    mail_from = template["Resources"]["EmailIdentity"]["Properties"]["MailFromAttributes"]
    parameters = {"SenderEmail": "news@shop.example.co.uk"}
    assert _resolve(mail_from["MailFromDomain"], template, parameters) == "mail.shop.example.co.uk"
    # Without the MX record SES still sends (from amazonses.com) instead of rejecting every message.
    assert mail_from["BehaviorOnMxFailure"] == "USE_DEFAULT_VALUE"
    # mail.<domain> may already be a CNAME (a web host), which cannot also hold the MX and TXT: another label.
    parameters["MailFromSubdomain"] = "bounce"
    assert _resolve(mail_from["MailFromDomain"], template, parameters) == "bounce.shop.example.co.uk"
    outputs = _outputs(template, parameters)
    assert outputs["MailFromMxRecord"].startswith("bounce.shop.example.co.uk MX 10 ")
    assert outputs["MailFromSpfRecord"].startswith("bounce.shop.example.co.uk TXT ")


def test_the_identity_is_created_unless_the_operator_says_the_domain_is_already_verified(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["ManageSendingDomain"]
    assert (parameter["AllowedValues"], parameter["Default"]) == (["true", "false"], "true")
    assert template["Resources"]["EmailIdentity"]["Condition"] == "ManagesSendingDomain"
    assert _condition(template, "ManagesSendingDomain", {})
    assert not _condition(template, "ManagesSendingDomain", {"ManageSendingDomain": "false"})


def test_the_outputs_are_the_dns_records_to_add(template: dict[str, Any]) -> None:
    outputs = _outputs(template, {"SenderEmail": "bonjour@boutique.example"})
    assert outputs["DkimRecord1"] == "<EmailIdentity.DkimDNSTokenName1> CNAME <EmailIdentity.DkimDNSTokenValue1>"
    assert outputs["DkimRecord2"] == "<EmailIdentity.DkimDNSTokenName2> CNAME <EmailIdentity.DkimDNSTokenValue2>"
    assert outputs["DkimRecord3"] == "<EmailIdentity.DkimDNSTokenName3> CNAME <EmailIdentity.DkimDNSTokenValue3>"
    assert outputs["MailFromMxRecord"] == f"mail.boutique.example MX 10 feedback-smtp.{REGION}.amazonses.com"
    assert outputs["MailFromSpfRecord"] == 'mail.boutique.example TXT "v=spf1 include:amazonses.com ~all"'
    assert outputs["DmarcRecord"] == (
        '_dmarc.boutique.example TXT "v=DMARC1; p=none; rua=mailto:bonjour@boutique.example"'
    )


def test_dmarc_reports_go_to_the_address_the_operator_gives(template: dict[str, Any]) -> None:
    parameters = {"SenderEmail": "bonjour@boutique.example", "DmarcReportEmail": "dmarc@boutique.example"}
    assert _outputs(template, parameters)["DmarcRecord"].endswith('rua=mailto:dmarc@boutique.example"')


def test_with_a_domain_already_verified_the_stack_shows_no_records_nor_reads_the_identity(
    template: dict[str, Any],
) -> None:
    outputs = _outputs(template, {"SenderEmail": "bonjour@boutique.example", "ManageSendingDomain": "false"})
    assert not {"DkimRecord1", "DkimRecord2", "DkimRecord3", "MailFromMxRecord", "DmarcRecord"} & outputs.keys()
    assert "ApiUrl" in outputs
    for name, output in template["Outputs"].items():
        if "EmailIdentity" in str(output["Value"]):
            assert output.get("Condition") == "ManagesSendingDomain", name


@pytest.mark.parametrize(
    ("alarm", "metric", "threshold"),
    [
        ("ComplaintRateAlarm", "Reputation.ComplaintRate", 0.001),  # Gmail's 0.1%, well before its 0.3% and SES's 0.5%
        ("BounceRateAlarm", "Reputation.BounceRate", 0.02),  # AWS's advice: a warning before SES's review at 5%
    ],
)
def test_the_accounts_reputation_is_alarmed_before_gmail_or_ses_act(
    template: dict[str, Any], alarm: str, metric: str, threshold: float
) -> None:
    resource = template["Resources"][alarm]
    assert resource["Type"] == "AWS::CloudWatch::Alarm"
    assert "Condition" not in resource  # account metrics: watched whoever manages the domain
    props = resource["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Threshold"]) == ("AWS/SES", metric, threshold)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "Dimensions" not in props  # the account-wide rate SES itself judges
    assert props["TreatMissingData"] == "notBreaching"  # SES publishes nothing until mail bounces or complains
