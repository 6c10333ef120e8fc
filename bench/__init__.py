"""clipmaker's benchmark suite: ``bench/run.sh`` (or ``python -m bench``); see bench/README.md."""
