"""`make bench` cannot rot: `make test` runs `python -m infra.bench --quick`, which fails when a figure crashes.

Nothing here runs a figure for real (`make test` does that after pytest): the figures are replaced by fakes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import bench, samtemplate
from shared.settings import Settings


def figures(calls: list[int], crashing: int | None = None) -> tuple[tuple[int, Callable[[bench.Run], None]], ...]:
    def figure(number: int) -> Callable[[bench.Run], None]:
        def run(run: bench.Run) -> None:
            calls.append(number)
            assert run.sizes == bench.QUICK
            print(f"{number}. figure {number}")
            if number == crashing:
                raise RuntimeError(f"figure {number} rotted")

        return run

    return tuple((number, figure(number)) for number in (4, 3, 2, 1))


def no_runtime(error: Exception | None = None) -> Callable[[], AbstractContextManager[Callable[[], object]]]:
    """In place of the quick run's `parcours local`: nothing started; figure 1 gets `error` raised if given."""

    @contextmanager
    def background() -> Iterator[Callable[[], object]]:
        def runtime() -> object:
            if error is not None:
                raise error
            return object()

        yield runtime

    return background


def test_a_crashing_figure_fails_the_quick_run_names_it_and_hides_none_of_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given four figures, the third of which crashes
    calls: list[int] = []
    monkeypatch.setattr(bench, "FIGURES", figures(calls, crashing=3))
    monkeypatch.setattr(bench, "runtime_in_background", no_runtime())

    # When the quick run runs
    code = bench.main(["--quick"])

    # Then it fails, every figure ran and printed, and the crash is shown and named
    out, err = capsys.readouterr()
    assert code == 1
    assert calls == [4, 3, 2, 1]
    assert all(f"{n}. figure {n}" in out for n in (4, 3, 2, 1))
    assert "RuntimeError: figure 3 rotted" in err
    assert err.rstrip().endswith("bench: figure 3 crashed (traceback above)")


def test_the_quick_run_passes_when_every_figure_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(bench, "FIGURES", figures(calls))
    monkeypatch.setattr(bench, "runtime_in_background", no_runtime())

    assert bench.main(["--quick"]) == 0
    assert calls == [4, 3, 2, 1]
    assert capsys.readouterr().err == ""


def test_figure_1_crashes_when_its_runtime_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "FIGURES", ((1, bench.figure_1),))
    monkeypatch.setattr(bench, "runtime_in_background", no_runtime(RuntimeError("parcours local exited with 1")))

    assert bench.main(["--quick"]) == 1
    assert "bench: figure 1 crashed" in capsys.readouterr().err


def test_sizes_given_on_the_command_line_win_over_the_quick_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bench.Sizes] = []
    monkeypatch.setattr(bench, "FIGURES", ((4, lambda run: seen.append(run.sizes)),))
    monkeypatch.setattr(bench, "runtime_in_background", no_runtime())

    assert bench.main(["--quick", "--silent", "7"]) == 0
    assert seen == [dataclasses.replace(bench.QUICK, silent=7)]


def test_the_bench_account_has_what_the_template_hands_the_process_function() -> None:
    # Figure 2 once crashed on QueueDoesNotExist: its account had no events queue since processing emits events.
    with bench._moto_environment(), mock_aws():
        bench._provision(samtemplate, "ProcessFunction")
        settings = Settings.from_environ(dict(os.environ))
        sqs = boto3.client("sqs", region_name=bench.REGION)
        events = sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["All"])["Attributes"]
        assert events["FifoQueue"] == "true"
        assert events["DeduplicationScope"] == "messageGroup"
        assert settings.handoff_queue_url is not None
        sqs.get_queue_attributes(QueueUrl=settings.handoff_queue_url, AttributeNames=["QueueArn"])
        tables = set(boto3.client("dynamodb", region_name=bench.REGION).list_tables()["TableNames"])
        named = {getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name.endswith("_table")}
        # every table, the campaigns table too: processing answers a person's data request and erasure
        assert None not in named
        assert len(named) == 12
        assert named <= tables


def test_the_import_figures_cheaper_emulation_keeps_a_cancelled_transaction_cancelled() -> None:
    """Figure 5 backs up only the items a transaction names (bench._emulation_at_aws_cost): what a cancelled
    transaction wrote must still be undone, and moto's own behaviour must come back afterwards."""
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
    from moto.sqs.models import Queue

    before = (DynamoDBBackend.transact_write_items, Queue.approximate_number_of_messages)
    with mock_aws(), bench._emulation_at_aws_cost():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        stream: Any = dynamodb_backends["123456789012"]["eu-west-3"].tables["t"].stream_shard
        # Given a transaction whose first write applies and whose second fails its condition
        cancelled: list[Any] = [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                    "UpdateExpression": "SET n = :two",
                    "ConditionExpression": "n = :zero",
                    "ExpressionAttributeValues": {":two": {"N": "2"}, ":zero": {"N": "0"}},
                }
            },
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
        ]
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=cancelled)
        # Then nothing of it stays, in the table nor in its stream (the report function counts from streams)
        items = dynamodb.scan(TableName="t")["Items"]
        assert items == [{"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}}]
        assert [record.record["eventName"] for record in stream.items] == ["INSERT"]
        # and a transaction that goes through applies whole
        dynamodb.transact_write_items(TransactItems=cancelled[:1])
        assert len(dynamodb.scan(TableName="t")["Items"]) == 2
    assert (DynamoDBBackend.transact_write_items, Queue.approximate_number_of_messages) == before


@pytest.mark.parametrize("elsewhere", [False, True])
def test_figure_8_counts_the_aws_calls_and_their_cpu_apart_from_the_callers(elsewhere: bool) -> None:
    """Figure 7's own CPU is the caller's less its AWS calls: every call is counted, moto's answers apart from the
    client side, and botocore comes back as it was; from a thread of their own, the caller's thread pays none."""
    from botocore.client import BaseClient

    before = getattr(BaseClient, "_make_api_call")  # noqa: B009
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with bench._aws_apart(elsewhere) as aws:
            started = time.thread_time()
            for n in range(20):
                dynamodb.put_item(TableName="t", Item={"pk": {"S": str(n)}})
            with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):  # a refused call is counted too
                dynamodb.get_item(TableName="missing", Key={"pk": {"S": "0"}})
            caller = time.thread_time() - started
        assert aws.calls == 21
        assert 0 < aws.answers < aws.seconds
        if elsewhere:
            assert caller < aws.seconds / 2
        else:
            assert aws.seconds <= caller
    assert getattr(BaseClient, "_make_api_call") is before  # noqa: B009


def test_figure_8s_profile_names_parcours_own_functions_and_leaves_the_bench_out() -> None:
    import cProfile
    import pstats

    from shared.events import Event

    body = json.loads((bench.EVENTS / "customers-create.json").read_text(encoding="utf-8"))
    record = bench._record("customers/create", "e1", json.dumps(body).encode())
    profile = cProfile.Profile(time.thread_time)
    with mock_aws(), bench._aws_apart(elsewhere=True):
        sqs = boto3.client("sqs", region_name="eu-west-3")
        sqs.list_queues()

        def event_then_call() -> None:
            Event.from_dict(json.loads(record["body"]))
            sqs.list_queues()  # from the bench's thread (bench._aws_apart): its hand-over is not parcours' work

        for _ in range(50):
            profile.runcall(event_then_call)
    lines = bench.profile_lines(pstats.Stats(profile), 50, top=40)
    assert lines[0].startswith("   by package: ")
    assert "shared.events" in lines[0]
    assert any("from_dict (shared/events.py:" in line for line in lines[2:])
    assert not any("infra/bench.py" in line or "threading.py" in line for line in lines)
    assert any("event_then_call (tests/unit/infra/test_bench.py:" in line for line in lines)


def test_the_campaign_figures_saved_for_parcours_cost_are_request_units_per_person(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from collections import Counter

    from infra import cli
    from infra.cost import estimate

    mine = tmp_path / "measured.json"
    mine.write_text(estimate.MEASURED.read_text())
    monkeypatch.setattr(estimate, "MEASURED", mine)
    # Given a campaign of 10 people that made these requests in 0.2 s
    requests = Counter(GetItem=20, UpdateItem=18, PutItem=9, TransactWriteItems=10, BatchGetItem=1, Query=1)
    figures = bench.CampaignFigures(rate=50.0, bare=400.0, sent=9, messages=3, requests=requests)
    # When they are saved
    bench._save_campaign(figures, audience=10)
    # Then each person is one item of the chunk's read and a transaction of two items is four write units
    saved = json.loads(mine.read_text())["campaign"]
    assert (saved["reads"], saved["writes"], saved["ms"]) == (3.1, 6.7, 20.0)
    # And `parcours cost` prices a campaign's person with them: twice the writes, nearly twice the DynamoDB cost
    capsys.readouterr()
    doubled = json.loads(mine.read_text())
    doubled["campaign"]["writes"] = 13.4
    (tmp_path / "doubled.json").write_text(json.dumps(doubled))

    def dynamodb(path: Any) -> str:
        assert cli.main(["cost", "--measured", str(path)]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| black-friday"))
        return row.split("|")[7].strip()

    assert (dynamodb(mine), dynamodb(tmp_path / "doubled.json")) == ("$0.005", "$0.010")  # SES feedback: $0.001


@pytest.mark.scale
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_figure_3_can_count_instructions_the_same_on_every_run() -> None:
    more = "import decimal, json, email.message"
    first = bench.import_instructions({"little": "x = 1", "more": more})
    again = bench.import_instructions({"more": more})
    assert 0 <= first["little"] < first["more"]
    assert abs(first["more"] - again["more"]) < 0.001 * first["more"]  # timing moved a ratio by up to 15 %
