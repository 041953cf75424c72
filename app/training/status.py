"""The dock's status row: the progress bar, the speed, and the current figures in large type.

A mixin of TrainingDock (dock.py), which owns the widgets: what is here turns the current run's
history (the run model's) into text, 5 times a second during a run, and says at once when a run
pauses or resumes (it follows the dock's `state_changed`).

One rule for "which epoch" everywhere (`epoch_of`): the epoch a step belongs to, counted from
1, so the bar during a run and the message after a stop name the same epoch.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from ..number_text import number, percent

FIGURE_NAMES = {"loss": "training loss", "val_loss": "validation loss"}
STATE_WORDS = {"paused": "paused", "stopped": "stopped", "failed": "failed"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _figure_text(key: str, value: float) -> str:
    if "accuracy" in key:
        return percent(value)
    return number(value)


def epoch_of(run, step: int | None = None) -> int:
    """The epoch (from 1) that `step` (the run's last step unless given) belongs to; 0 before
    the first step."""
    step = run.last_step() if step is None else step
    if not step:
        return 0
    epoch = (step - 1) // max(run.steps_per_epoch, 1) + 1
    return min(run.epochs_planned, epoch) if run.epochs_planned else epoch


def stopped_text(run) -> str:
    """What the note says when a run is stopped by the user."""
    step, epoch = run.last_step(), epoch_of(run)
    if run.epochs_done and run.epochs_done < epoch:
        done = f", {run.epochs_done} complete"
    elif run.epochs_done:
        done = ""
    else:
        done = ", none complete"
    return (f"Stopped at step {step:,} (epoch {epoch}{done}). The weights stay: Train goes on "
            "from them.")


class StatusRow:
    """The status row's part of TrainingDock."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shown_state = "idle"
        self.state_changed.connect(self._state_shown)

    def _show_no_run(self) -> None:
        """The row as before any run."""
        self.progress.reset()
        self.progress.setRange(0, 100)
        self.progress.setFormat("not started")
        self.speed.setText("")
        self._show_figures({})

    def _state_shown(self, state: str) -> None:
        """Pause and resume are said at once, in the note, the status bar and the bar."""
        before, self._shown_state = self._shown_state, state
        run = self.history.current
        if run is None or state == before:
            return
        if state == "paused":
            # where it is, the bar says (Step moves it on without a change of state)
            self._say("<b>Paused.</b> Resume goes on from here; Step trains one batch.")
            self.message.emit(f"Training paused at step {run.last_step():,}")
        elif state == "running" and before == "paused":
            self._say(f"Resumed: training {run.label}…")
            self.message.emit("Training resumed")
        self._update_status()

    def _update_status(self) -> None:
        run = self.history.current
        if run is None or run.past:  # a run of an earlier session: the row says "not started"
            return
        if not run.total_steps:  # no start event: the run is starting, or failed to
            self.progress.setRange(0, 100)
            self.progress.setValue(0)
            self.progress.setFormat("did not start" if run.state == "failed" else "starting…")
            self.speed.setText("")
            return
        step, total = run.last_step(), max(run.total_steps, 1)
        self.progress.setMaximum(total)
        self.progress.setValue(min(step, total))
        state = "paused" if self.state == "paused" else run.state
        word = STATE_WORDS.get(state)
        self.progress.setFormat((f"{word} · " if word else "") +
                                f"epoch {epoch_of(run)}/{run.epochs_planned} · "
                                f"step {step}/{total}")
        eta = run.eta_seconds() if self.state == "running" else None
        parts = [f"{run.steps_per_s:,.0f} steps/s"] if run.steps_per_s else []
        if eta is not None:
            parts.append(f"{_duration(eta)} left")
        self.speed.setText("  ·  ".join(parts))
        figures = {}
        if run.epochs_done:
            for key in ["loss", "val_loss", *run.metric_names(),
                        *(f"val_{m}" for m in run.metric_names())]:
                values = run.figure(key)
                if len(values):
                    figures[key] = float(values[-1])
        elif len(run.smoothed):
            figures["loss"] = run.smoothed.last()
        self._show_figures(figures)

    def _show_figures(self, figures: dict) -> None:
        if list(self.figure_labels) != list(figures):
            while self.figures.count():
                widget = self.figures.takeAt(0).widget()
                if widget is not None:
                    widget.hide()  # at once: deleteLater alone leaves it drawn under the new
                    widget.deleteLater()
            self.figure_labels = {}
            for col, key in enumerate(figures):
                title = QLabel(FIGURE_NAMES.get(key, key.replace("val_", "validation ")),
                               self.figures_host)
                title.setStyleSheet("color: #9aa1ab; font-size: 8pt;")
                value = QLabel("", self.figures_host)
                size = "20pt" if key in ("loss", "val_loss") or "accuracy" in key else "16pt"
                value.setStyleSheet(f"font-size: {size}; font-weight: 600; color: #e6e8eb;")
                self.figures.addWidget(title, 0, col)
                self.figures.addWidget(value, 1, col)
                self.figure_labels[key] = value
        for key, value in figures.items():
            self.figure_labels[key].setText(_figure_text(key, value))
