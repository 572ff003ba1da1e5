"""A line a person can follow while a run goes, instead of silence until the summary: one per step, with
what it is doing (rows so far, models built) and how long it has taken (boxoffice.console.StepLines).

It is a Dagster logger (`progress`), so it sees the run's own events: the command line switches it on."""

from __future__ import annotations

import logging
import sys

import dagster as dg

from boxoffice.console import StepLines
from orchestration.dbt_assets import DAILY_STEP, DBT_STEP, DBT_STEPS
from orchestration.extract_assets import EXTRACT_STEP
from orchestration.warehouse_assets import build_settings


def label(step: str) -> str:
    if step == DBT_STEP:
        return "dbt build (staging, intermediate, marts)"
    if step == DAILY_STEP:
        return "dbt build (marts by day)"
    if step == EXTRACT_STEP:
        return "extract: platform and Mollie"
    if step == build_settings.op.name:
        return "settings: PII salt, time zone"
    if step.endswith("_checks"):
        return "checks: " + step.removesuffix("_checks").replace("_", " ")
    return step.replace("__", "/")


class ProgressHandler(logging.Handler):
    def __init__(self, stream):
        super().__init__()
        self.lines = StepLines(stream)
        self.built: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step, event = meta.get("step_key"), meta.get("dagster_event")
        if not step:
            return
        kind = event.event_type_value if event else None
        if kind == "STEP_START":
            self.lines.start(step, label(step))
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.show(step, "done" if kind == "STEP_SUCCESS" else "FAILED", final=True)
        elif kind == "ASSET_MATERIALIZATION" and step in (*DBT_STEPS, EXTRACT_STEP):
            self.built[step] = self.built.get(step, 0) + 1
            self.show(step, f"{self.built[step]} {'tables loaded' if step == EXTRACT_STEP else 'models built'}")
        elif kind is None and (step == EXTRACT_STEP or "%" in (meta.get("orig_message") or "")):
            self.show(step, meta["orig_message"])  # the extractors' own progress

    def show(self, step: str, text: str, final: bool = False) -> None:
        self.lines.show(step, text, final, label(step))


def show_outside_a_run(what: str, text: str, seconds: float) -> None:
    """A line like a step's, for work between the command line's two runs (the build plan)."""
    sys.__stdout__.write(f"  {what:42} {text}  [{seconds:,.0f}s]\n")
    sys.__stdout__.flush()


@dg.logger(description="One line per step while a run goes (the command line's live progress).")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("boxoffice.progress", level=logging.DEBUG)
    logger.addHandler(ProgressHandler(sys.__stdout__))  # the real terminal: the run's own output goes to its log
    return logger
