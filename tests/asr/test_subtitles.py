"""Cues from word timestamps, and the exact SRT / WebVTT text they become."""

from __future__ import annotations

import random
import re

import pytest

from clipmaker.asr import Cue, Word, build_cues, to_srt, to_vtt
from clipmaker.asr.subtitles import MIN_CUE_S


def speak(text: str, *, start: float = 0.0, rate: float = 0.3, gap: float = 0.05) -> list[Word]:
    """Words of ``text``, one every ``rate`` seconds (``gap`` of silence between words)."""
    words = []
    t = start
    for token in text.split():
        words.append(Word(round(t, 3), round(t + rate - gap, 3), token, 0.9))
        t += rate
    return words


def plain(cues: list[Cue]) -> str:
    return " ".join(" ".join(c.lines) for c in cues)


def assert_limits(cues: list[Cue], *, chars: int = 42, lines: int = 2, cue_s: float = 7.0):
    for cue in cues:
        assert 1 <= len(cue.lines) <= lines, cue
        assert all(0 < len(line) <= chars for line in cue.lines), cue
        assert all(line == line.strip() for line in cue.lines), cue
        assert 0 < cue.end - cue.start <= cue_s + 1e-9, cue
    for a, b in zip(cues, cues[1:], strict=False):
        assert a.end <= b.start, (a, b)


# --- writers ------------------------------------------------------------------------------------


CUES = [
    Cue(1.0, 2.5, ("Hello there.",)),
    Cue(3723.004, 3725.9999, ("Two lines", "in one cue")),
]


def test_srt_exact() -> None:
    assert to_srt(CUES) == (
        "1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n01:02:03,004 --> 01:02:06,000\nTwo lines\nin one cue\n\n"
    )


def test_vtt_exact() -> None:
    assert to_vtt(CUES) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.500\nHello there.\n\n"
        "01:02:03.004 --> 01:02:06.000\nTwo lines\nin one cue\n\n"
    )


def test_vtt_escapes_markup_but_srt_keeps_text() -> None:
    cue = [Cue(0.0, 1.0, ("a <b> & c --> d",))]
    assert to_vtt(cue).endswith("\na &lt;b&gt; &amp; c --&gt; d\n\n")
    assert to_srt(cue).endswith("\na <b> & c --> d\n\n")


def test_empty_input_gives_valid_empty_files() -> None:
    assert build_cues([]) == []
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n\n"


# --- cue building -------------------------------------------------------------------------------


def test_short_sentence_is_one_cue_on_one_line_timed_by_its_words() -> None:
    cues = build_cues(speak("A quick brown fox jumps over a lazy dog."))
    assert cues == [Cue(0.0, 2.65, ("A quick brown fox jumps over a lazy dog.",))]


def test_sentence_ends_break_cues() -> None:
    cues = build_cues(speak("Hello there. How are you? Fine, thanks!"))
    assert [c.lines for c in cues] == [("Hello there.",), ("How are you?",), ("Fine, thanks!",)]
    assert_limits(cues)


def test_abbreviations_do_not_end_a_sentence() -> None:
    cues = build_cues(speak("Ask Dr. Smith now."))
    assert [c.lines for c in cues] == [("Ask Dr. Smith now.",)]


def test_long_pause_breaks_a_cue() -> None:
    words = speak("we waited") + speak("and waited", start=3.0)
    cues = build_cues(words)
    assert [c.lines for c in cues] == [("we waited",), ("and waited",)]
    assert cues[1].start == 3.0


def test_long_speech_respects_every_limit() -> None:
    rng = random.Random(7)
    vocabulary = "a an the we you they clip video subtitle audio language reasonably extraordinary"
    tokens = vocabulary.split()
    words: list[Word] = []
    t = 0.0
    for i in range(600):
        text = rng.choice(tokens)
        if i % 17 == 16:
            text += rng.choice([".", ",", "?"])
        duration = 0.06 * len(text) + 0.05  # ~15 characters per second, like real speech
        words.append(Word(round(t, 3), round(t + duration, 3), text, 0.9))
        t += duration + (1.5 if i % 97 == 96 else rng.choice([0.02, 0.05, 0.1, 0.4]))

    cues = build_cues(words)

    assert_limits(cues)
    assert plain(cues) == " ".join(w.text for w in words)  # every word, in order, once
    for cue in cues:
        chars = sum(len(line) for line in cue.lines)
        assert chars / (cue.end - cue.start) <= 20.0 + 1e-6, cue
    # Cues are not starved: most use the room they have.
    assert sum(len(c.lines) == 2 for c in cues) > len(cues) / 3


def test_slow_speech_is_cut_at_the_duration_limit() -> None:
    words = speak("one two three four five six seven eight nine ten eleven twelve", rate=1.0)
    cues = build_cues(words)
    assert len(cues) >= 2
    assert_limits(cues)
    assert plain(cues) == " ".join(w.text for w in words)


def test_custom_limits() -> None:
    words = speak("the service cuts a clip and writes subtitles that people can read " * 3)
    cues = build_cues(words, max_line_chars=20, max_lines=1, max_cue_s=2.0)
    assert_limits(cues, chars=20, lines=1, cue_s=2.0)
    assert plain(cues) == " ".join(w.text for w in words)


def test_lines_are_balanced() -> None:
    text = "This sentence is long enough that it needs two lines on screen"
    (cue,) = build_cues(speak(text, rate=0.1))
    assert len(cue.lines) == 2
    first, second = (len(line) for line in cue.lines)
    assert abs(first - second) <= 8, cue.lines


def test_line_break_prefers_punctuation() -> None:
    (cue,) = build_cues(speak("Yesterday we filmed the river, then we edited clips", rate=0.1))
    assert cue.lines == ("Yesterday we filmed the river,", "then we edited clips")


def test_a_full_cue_breaks_after_a_clause_not_mid_phrase() -> None:
    text = (
        "When the crew arrived at the studio this morning, everyone was ready to start "
        "filming the scene at once"
    )
    cues = build_cues(speak(text, rate=0.1))
    assert len(cues) == 2
    assert cues[0].lines[-1].endswith("morning,")
    assert_limits(cues)


def test_a_full_cue_without_punctuation_breaks_at_the_longest_pause() -> None:
    head = "the crew arrived at the studio early this morning and then"
    tail = "everyone was ready to start filming the scene at once and go"
    words = speak(head, rate=0.1) + speak(tail, start=0.1 * len(head.split()) + 0.5, rate=0.1)
    cues = build_cues(words)
    assert " ".join(cues[0].lines) == head
    assert_limits(cues)


def test_short_cue_stays_readable_without_overlapping() -> None:
    words = speak("Hi.", rate=0.2) + speak("Okay then.", start=5.0)
    cues = build_cues(words)
    assert cues[0].end == pytest.approx(0.0 + MIN_CUE_S, abs=0.001)  # extended to the minimum

    words = speak("Yes.", rate=0.2) + speak("No.", start=0.4)
    cues = build_cues(words)
    assert cues[0].end == 0.4  # would be longer, but never past the next cue's start
    assert_limits(cues)


def test_fast_speech_is_held_for_reading_when_there_is_silence_after() -> None:
    text = "Extraordinarily rapid speech here"  # 33 characters in 0.8 s: 41 cps
    words = speak(text, rate=0.2) + speak("Next.", start=9.0)
    cue = build_cues(words)[0]
    assert cue.end - cue.start == pytest.approx(len(text) / 20.0, abs=0.002)


def test_word_longer_than_a_line_is_split() -> None:
    url = "https://example.com/" + "x" * 60
    cues = build_cues([Word(0.0, 2.0, url, 0.9)])
    assert_limits(cues)
    assert "".join(line for c in cues for line in c.lines) == url


def test_output_parses_back() -> None:
    cues = build_cues(speak("First sentence here. And a second one, which is a bit longer."))
    srt = to_srt(cues)
    blocks = srt.strip("\n").split("\n\n")
    assert len(blocks) == len(cues)
    for n, block in enumerate(blocks, start=1):
        index, times, *_ = block.split("\n")
        assert index == str(n)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", times)
