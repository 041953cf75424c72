"""Live training in the editor: the training dock, its worker thread, plots and views.

`dock.TrainingDock` is the widget; `worker.TrainingWorker` runs the trainer off the UI thread;
`history` keeps the runs since the document was opened; `plots`, `dataview` and `inspect` draw
them; `probe` runs the graph on a few rows to see inside it; `overlay` marks the canvas.
"""

from .qt_guard import protect_bools as _protect_bools

_protect_bools()  # each signal emit leaks a reference to True on PySide6 6.12 + Python 3.11
