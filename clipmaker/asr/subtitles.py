"""Subtitle cues cut from word timestamps, and the SRT and WebVTT writers.

Whisper's segments are the wrong unit for subtitles: they run up to 30 s and ignore reading
speed, which is the complaint users of whisperX and faster-whisper raise most. So cues are built
from words, following the usual style-guide limits (Netflix-like: 42 characters a line, 2 lines,
at most 7 s, at most 20 characters a second):

- a cue ends at a sentence end, at a pause longer than ``max_gap_s``, or where one more word
  would break the line/line-count/duration limits; in that last case the break moves back to a
  clause boundary (comma, semicolon...) or the longest pause in the cue's second half, so cues
  do not end in the middle of a phrase when a better point is near;
- a cue's lines are balanced (similar lengths, preferring breaks after punctuation);
- a cue stays on screen at least ``min_cue_s`` and long enough to read at ``max_cps``, by
  extending it into the silence after it, but never past the next cue's start (cues never
  overlap) nor past ``max_cue_s``. When speech itself is faster than ``max_cps`` the cue stays in
  sync with the speech: out-of-sync text is worse than fast text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from clipmaker.asr.transcriber import Word, join_words

MIN_CUE_S = 5 / 6  # Netflix's minimum event duration (20 frames at 24 fps)
_MIN_SPLIT_GAP_S = 0.3  # a pause this long is a natural place to break a full cue

_CLOSERS = re.escape("\"'”’»)]}")  # may follow the punctuation: 'he said "stop."'
_SENTENCE_END = re.compile(rf"[.!?…。！？][{_CLOSERS}]*$")
_CLAUSE_END = re.compile(rf"[,;:—–、，；：][{_CLOSERS}]*$")
# Words whose full stop does not end a sentence ("Dr. Smith").
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "e.g.", "i.e."})


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def build_cues(
    words: Sequence[Word],
    *,
    max_line_chars: int = 42,
    max_lines: int = 2,
    max_cue_s: float = 7.0,
    max_cps: float = 20.0,
    max_gap_s: float = 1.0,
    min_cue_s: float = MIN_CUE_S,
) -> list[Cue]:
    """Cues for ``words`` (in time order) within the given readability limits."""
    if max_line_chars < 1 or max_lines < 1 or max_cue_s <= 0 or max_cps <= 0:
        raise ValueError("subtitle limits must be positive")
    tokens = list(_split_long_words(words, max_line_chars))
    groups = _group(tokens, max_line_chars, max_lines, max_cue_s, max_gap_s)
    return list(_timed_cues(list(groups), max_line_chars, max_cue_s, max_cps, min_cue_s))


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, a blank line after each cue."""
    return "".join(
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n\n"
        for i, c in enumerate(cues, start=1)
    )


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: a ``WEBVTT`` header, ``HH:MM:SS.mmm`` times, cue text escaped."""
    body = "".join(
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{_vtt_escape(c.text)}\n\n"
        for c in cues
    )
    return "WEBVTT\n\n" + body


# --- grouping words into cues -----------------------------------------------------------------


def _split_long_words(words: Iterable[Word], max_chars: int) -> Iterator[Word]:
    """Cut a word longer than a line (a URL, say) into line-sized pieces, timed pro rata."""
    for w in words:
        if len(w.text) <= max_chars:
            yield w
            continue
        pieces = [w.text[i : i + max_chars] for i in range(0, len(w.text), max_chars)]
        step = (w.end - w.start) / len(pieces)
        for i, piece in enumerate(pieces):
            yield Word(w.start + i * step, w.start + (i + 1) * step, piece, w.probability)


def _ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and text.lower() not in _ABBREVIATIONS


def _min_lines(texts: Sequence[str], max_chars: int) -> int:
    """Fewest lines of at most ``max_chars`` that hold ``texts`` (greedy filling is optimal)."""
    lines, line = 1, ""
    for t in texts:
        joined = join_words((line, t))
        if line and len(joined) > max_chars:
            lines, line = lines + 1, t
        else:
            line = joined
    return lines


def _group(
    words: Sequence[Word], max_chars: int, max_lines: int, max_cue_s: float, max_gap_s: float
) -> Iterator[list[Word]]:
    def fits(ws: Sequence[Word]) -> bool:
        return (
            ws[-1].end - ws[0].start <= max_cue_s
            and _min_lines([w.text for w in ws], max_chars) <= max_lines
        )

    cur: list[Word] = []
    for w in words:
        if cur and (_ends_sentence(cur[-1].text) or w.start - cur[-1].end > max_gap_s):
            yield cur
            cur = []
        # Full: emit a head of the cue, carry the rest, until the new word fits.
        while cur and not fits([*cur, w]):
            n = _best_break(cur, w)
            yield cur[:n]
            cur = cur[n:]
        cur.append(w)
    if cur:
        yield cur


def _best_break(cur: Sequence[Word], nxt: Word) -> int:
    """How many words of a full cue to emit: prefer a clause end, then a pause, in its 2nd half."""
    candidates = range(len(cur), (len(cur) - 1) // 2, -1)  # head sizes, latest first

    def gap_after(n: int) -> float:
        following = cur[n] if n < len(cur) else nxt
        return following.start - cur[n - 1].end

    for n in candidates:
        if _CLAUSE_END.search(cur[n - 1].text):
            return n
    best = max(candidates, key=gap_after)
    return best if gap_after(best) >= _MIN_SPLIT_GAP_S else len(cur)


def _balanced_lines(texts: Sequence[str], max_chars: int, n_lines: int) -> tuple[str, ...]:
    """Split ``texts`` into ``n_lines`` lines of similar length (least sum of squared lengths,
    a bonus for breaking after punctuation); lines over ``max_chars`` are avoided."""
    n = len(texts)
    bonus = (max_chars / 4) ** 2

    def cost(i: int, j: int) -> float:  # one line made of texts[i:j]
        length = len(join_words(texts[i:j]))
        over = length > max_chars and j - i > 1
        return math.inf if over else float(length * length)

    # best[k][j]: cheapest way to set texts[:j] on k lines; back[k][j]: where the last line starts
    best = [[math.inf] * (n + 1) for _ in range(n_lines + 1)]
    back = [[0] * (n + 1) for _ in range(n_lines + 1)]
    best[0][0] = 0.0
    for k in range(1, n_lines + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                if best[k - 1][i] == math.inf:
                    continue
                c = best[k - 1][i] + cost(i, j)
                if i > 0 and (_CLAUSE_END.search(texts[i - 1]) or _ends_sentence(texts[i - 1])):
                    c -= bonus
                if c < best[k][j]:
                    best[k][j], back[k][j] = c, i
    lines: list[str] = []
    j = n
    for k in range(n_lines, 0, -1):
        i = back[k][j]
        lines.append(join_words(texts[i:j]))
        j = i
    return tuple(reversed(lines))


# --- timing -------------------------------------------------------------------------------------


def _timed_cues(
    groups: Sequence[Sequence[Word]],
    max_chars: int,
    max_cue_s: float,
    max_cps: float,
    min_cue_s: float,
) -> Iterator[Cue]:
    prev_end = 0.0
    for idx, group in enumerate(groups):
        texts = [w.text for w in group]
        lines = _balanced_lines(texts, max_chars, _min_lines(texts, max_chars))
        start = max(group[0].start, prev_end)
        # Long enough to read (min duration, chars per second), into the silence after the cue.
        chars = sum(len(line) for line in lines)
        end = max(group[-1].end, start + min_cue_s, start + chars / max_cps)
        end = min(end, start + max_cue_s)
        if idx + 1 < len(groups):
            end = min(end, groups[idx + 1][0].start)
        end = max(end, start + 0.001)  # only out-of-order input can get here; keep it positive
        start, end = round(start, 3), round(end, 3)
        prev_end = end
        yield Cue(start=start, end=end, lines=lines)


# --- writers ------------------------------------------------------------------------------------


def _timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _vtt_escape(text: str) -> str:
    # "&" and "<" start markup in WebVTT; escaping ">" also rules out a literal "-->".
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
