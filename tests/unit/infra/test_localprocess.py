"""Starting `parcours local` for the tests and `parcours test`: a start that fails says why, and a port another
process took in the meantime costs a second try, not the test session."""

from __future__ import annotations

import pytest

from infra.localprocess import PortTaken, RunningLocal


def test_a_runtime_that_cannot_start_says_why_in_its_own_words() -> None:
    local = RunningLocal(time_scale=None, secret="s", start_at="the day after tomorrow")
    with pytest.raises(RuntimeError) as raised:
        local.start()
    assert not isinstance(raised.value, PortTaken)
    assert str(raised.value).startswith("parcours local exited with 2:")
    assert "argument --start: 'the day after tomorrow' is not an ISO date and time" in str(raised.value)


def test_a_port_taken_before_the_runtime_bound_it_is_tried_again_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    local = RunningLocal(time_scale=None, secret="s")
    ports: list[int] = []

    def start_once_taken(timeout: float) -> None:
        ports.append(local.port)
        if len(ports) == 1:
            raise PortTaken("OSError: [Errno 98] Address already in use")

    monkeypatch.setattr(local, "_start", start_once_taken)
    local.start()
    assert len(ports) == 2  # a port picked afresh (the system may pick the same one again, if free by then)
    assert local.api_url == f"http://127.0.0.1:{ports[1]}"


def test_a_port_taken_every_time_gives_up_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    local = RunningLocal(time_scale=None, secret="s")
    tries: list[int] = []

    def always_taken(timeout: float) -> None:
        tries.append(local.port)
        raise PortTaken("OSError: [Errno 98] Address already in use")

    monkeypatch.setattr(local, "_start", always_taken)
    with pytest.raises(PortTaken):
        local.start(attempts=3)
    assert len(tries) == 3
