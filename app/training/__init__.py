"""Live training in the editor: the training dock, its worker thread, plots and views.

`dock.TrainingDock` is the widget; `worker.TrainingWorker` runs the trainer off the UI thread;
`history` keeps the runs since the document was opened; `plots`, `dataview` and `inspect` draw
them; `probe` runs the graph on a few rows to see inside it; `overlay` marks the canvas.
"""
