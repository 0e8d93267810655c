"""The memory that answers each photo once, even when Slack delivers its message twice."""

from __future__ import annotations

import threading

from bot.deduplication import AnsweredOnce


def test_a_key_is_answered_the_first_time_only() -> None:
    answered = AnsweredOnce()
    assert answered.first_time("C1", "1700000000.000100", "F1")
    assert not answered.first_time("C1", "1700000000.000100", "F1")
    # Another file of the same message, or the same file id elsewhere, is another answer.
    assert answered.first_time("C1", "1700000000.000100", "F2")
    assert answered.first_time("C2", "1700000000.000100", "F1")


def test_it_remembers_the_latest_keys_up_to_its_size_and_forgets_the_oldest() -> None:
    answered = AnsweredOnce(size=2)
    for key in ("a", "b", "c"):
        assert answered.first_time(key)
    assert not answered.first_time("b")
    assert not answered.first_time("c")
    assert answered.first_time("a")


def test_of_many_threads_asking_at_once_exactly_one_answers() -> None:
    answered = AnsweredOnce()
    start = threading.Barrier(8)
    results: list[bool] = []

    def ask() -> None:
        start.wait()
        results.append(answered.first_time("C1", "ts", "F1"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
