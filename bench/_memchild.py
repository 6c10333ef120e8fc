"""Run one clip in a fresh process and report its peak RSS (used by bench/memory.py).

    python bench/_memchild.py clipmaker SOURCE START END DEST
    python bench/_memchild.py ffmpeg SOURCE START END DEST

Prints one JSON line. ``clipmaker``: ``clipmaker.media.cut(..., accuracy="frame")`` in this
process; ``peak_kb`` is this process's peak RSS (VmHWM, imports included), ``import_kb`` the
RSS right after importing. ``ffmpeg``: the FFmpeg CLI exact cut as a child; ``peak_kb`` is its
ru_maxrss (this process has no other child, so RUSAGE_CHILDREN is exactly that one; what it
inherits over exec is this small process's peak, far below FFmpeg's).
Deliberately imports nothing from ``bench``, so only the measured code is in the process.
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    tool, source, start, end, dest = sys.argv[1:6]
    started = time.perf_counter()
    if tool == "clipmaker":
        from clipmaker.media import cut

        import_kb = _status_kb("VmRSS")
        result = cut(source, Path(dest), float(start), float(end), accuracy="frame")
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, and Python starts children
        # with vfork, so ru_maxrss here would be at least the parent's peak (the benchmark
        # runner's). VmHWM is the peak of this process's own address space.
        peak = _status_kb("VmHWM")
        info = {"mode": result.mode, "duration": result.duration}
    else:
        import_kb = 0
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-nostdin",
                "-y",
                "-v",
                "error",
                "-ss",
                start,
                "-to",
                end,
                "-i",
                source,
                "-c:v",
                "libx264",
                "-c:a",
                "aac",
                dest,
            ],
            check=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        info = {}
    info.update(peak_kb=peak, import_kb=import_kb, seconds=time.perf_counter() - started)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
