"""One bot process under bursts: 20 slash commands and 5 photos at once, 10 times."""

from __future__ import annotations

import gc
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.pictures import draw_shape, encode
from tests.support.slack_answers import ACK_DEADLINE_SECONDS
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import BotFactory
from tests.support.slack_requests import message_event

ROUNDS = 10
COMMANDS = 20
PHOTOS = 5
COLORS = ("red", "green", "blue")


def resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


@pytest.mark.slow
def test_bursts_of_commands_and_photos_are_all_acked_in_time_and_answered_to_their_sender(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = start_bot(slack_queue=64)
    photos = [encode(draw_shape(COLORS[i % 3], "circle")) for i in range(PHOTOS)]
    slowest_ack = 0.0
    baseline = 0

    def command(name: str) -> float:
        started = time.monotonic()
        response = bot.sender.command("red circle", fake_slack.response_url(name))
        assert response.status_code == 200
        assert response.text == ""  # acked empty: the answer comes at the response URL
        return time.monotonic() - started

    def photo(round_: int, index: int) -> tuple[float, str]:
        file = fake_slack.add_file(f"p{round_}-{index}.png", photos[index])
        event = message_event(f"D{round_:04d}{index:03d}", files=[file])
        started = time.monotonic()
        assert bot.sender.event(event).status_code == 200
        return time.monotonic() - started, event["ts"]

    with ThreadPoolExecutor(COMMANDS + PHOTOS) as pool:
        for round_ in range(ROUNDS + 1):  # round 0 warms up and sets the baseline
            fake_slack.reset()
            names = [f"r{round_}-c{i}" for i in range(COMMANDS)]
            acks = [pool.submit(command, name) for name in names]
            sent = [pool.submit(photo, round_, i) for i in range(PHOTOS)]
            times = [f.result() for f in acks]
            photo_acks = [f.result() for f in sent]
            slowest_ack = max(slowest_ack, *times, *(t for t, _ in photo_acks))
            fake_slack.wait_for("response", COMMANDS, timeout=120)
            fake_slack.wait_for(
                "chat.postMessage", PHOTOS, where=lambda r: r.params.get("thread_ts"), timeout=120
            )
            bot.finish_work()
            answered = [r.path.rsplit("/", 1)[1] for r in fake_slack.calls("response")]
            assert sorted(answered) == sorted(names), "each command answered once, at its URL"
            threads = {
                (r.params["channel"], r.params["thread_ts"])
                for r in fake_slack.calls("chat.postMessage", lambda r: r.params.get("thread_ts"))
            }
            expected = {(f"D{round_:04d}{i:03d}", ts) for i, (_, ts) in enumerate(photo_acks)}
            assert threads == expected, "each photo answered once, in its own thread"
            gc.collect()
            if round_ == 0:
                baseline = resident_bytes()
    grown = resident_bytes() / baseline - 1
    assert slowest_ack < ACK_DEADLINE_SECONDS, slowest_ack
    assert grown < 0.10, f"resident memory grew {grown:.1%} over {ROUNDS} rounds"
    print(f"slowest ack {slowest_ack:.3f} s; resident memory {grown:+.1%} after {ROUNDS} rounds")
