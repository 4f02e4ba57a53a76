"""The project's main job, run by ``make demo`` (``python -m demo``)."""
