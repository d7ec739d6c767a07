"""Logging for every stage and process: stdout plus a rotating ``<log_dir>/<task>.log``."""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler

from pricecast.settings import Settings, get_settings

FORMAT = "%(asctime)s %(levelname)-7s [%(task)s] %(name)s: %(message)s"
_MARK = "_pricecast_handler"


class _TaskFilter(logging.Filter):
    """Stamps every record with the task name so mixed logs stay readable."""

    def __init__(self, task: str) -> None:
        super().__init__()
        self.task = task

    def filter(self, record: logging.LogRecord) -> bool:
        record.task = self.task
        return True


def configure(task: str, settings: Settings | None = None) -> logging.Logger:
    """Route the ``pricecast`` and ``components`` loggers to stdout and ``logs/<task>.log``.

    Idempotent: calling it again (a rerun in the same process) replaces our handlers instead of
    duplicating every line.
    """
    settings = settings or get_settings()
    formatter = logging.Formatter(FORMAT)
    task_filter = _TaskFilter(task)

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(
                settings.log_dir / f"{task}.log",
                maxBytes=settings.log_max_bytes,
                backupCount=settings.log_backups,
                encoding="utf-8",
            )
        )
    except OSError as exc:  # a read-only FS must not stop the stage; stdout still has it all
        print(f"pricecast: cannot write task log in {settings.log_dir}: {exc}", file=sys.stderr)

    for name in ("pricecast", "components", "pipelines", "serving"):
        logger = logging.getLogger(name)
        logger.setLevel(settings.log_level.upper())
        logger.propagate = False
        for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(old)
            old.close()
        for handler in handlers:
            handler.setFormatter(formatter)
            handler.addFilter(task_filter)
            setattr(handler, _MARK, True)
            logger.addHandler(handler)
    return logging.getLogger(f"pricecast.{task}")
