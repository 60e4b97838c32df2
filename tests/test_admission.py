"""Render slots: a bounded number of renders, a bounded waiting room, a bounded wait."""

import threading

import pytest

from huimages.errors import Overloaded
from huimages.serving.slots import RenderSlots


def test_waiting_room_is_bounded() -> None:
    slots = RenderSlots(slots=1, wait=5.0, waiting=1)
    holding, release, waited = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with slots.slot("first"):
            holding.set()
            release.wait(5)

    def wait_for_it() -> None:
        with slots.slot("second"):
            waited.set()

    first = threading.Thread(target=hold)
    first.start()
    holding.wait(5)
    second = threading.Thread(target=wait_for_it)
    second.start()
    while slots.queued < 1:  # the second is in the waiting room
        threading.Event().wait(0.001)
    with pytest.raises(Overloaded, match="1 render slots"), slots.slot("third"):  # the room is full: at once
        pass
    release.set()
    first.join(5)
    second.join(5)
    assert waited.is_set() and slots.refused == 1 and slots.in_flight == 0 and slots.queued == 0


def test_wait_is_bounded() -> None:
    slots = RenderSlots(slots=1, wait=0.05, waiting=5)
    with slots.slot("held"), pytest.raises(Overloaded), slots.slot("late"):
        pass
    with slots.slot("free again"):
        assert slots.in_flight == 1
