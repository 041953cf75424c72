"""The dock's status row: the progress bar, the speed, and the current figures in large type.

A mixin of TrainingDock (dock.py), which owns the widgets and the run history: what is here
turns the current run's history into text, 5 times a second during a run.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

FIGURE_NAMES = {"loss": "training loss", "val_loss": "validation loss"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _figure_text(key: str, value: float) -> str:
    if "accuracy" in key:
        return f"{100 * value:.1f}%"
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"


class StatusRow:
    """The status row's part of TrainingDock."""

    def _show_no_run(self) -> None:
        """The row as before any run."""
        self.progress.reset()
        self.progress.setRange(0, 100)
        self.progress.setFormat("not started")
        self.speed.setText("")
        self._show_figures({})

    def _update_status(self) -> None:
        run = self.history.current
        if run is None:
            return
        step, total = run.last_step(), max(run.total_steps, 1)
        self.progress.setMaximum(total)
        self.progress.setValue(min(step, total))
        epoch = min(run.epochs_planned, (step - 1) // run.steps_per_epoch + 1) if step else 0
        self.progress.setFormat(f"epoch {epoch}/{run.epochs_planned} · step {step}/{total}")
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
