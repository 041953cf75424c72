"""A picture of the main window with an example open, for people to look at."""

import os

from PySide6.QtWidgets import QApplication

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


def test_screenshot_of_the_main_window(window, tmp_path):
    assert window.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"), example=True)
    window.resize(1400, 860)
    QApplication.processEvents()
    window.view.frame_all()
    window.scene.select_nodes(["hidden2"])
    QApplication.processEvents()
    image = window.grab().toImage()
    path = tmp_path / "wiregrad-main.png"
    assert image.save(str(path))
    assert path.stat().st_size > 10_000
    # the canvas is dark and not empty
    centre = image.pixelColor(image.width() // 2, image.height() // 3)
    assert centre.lightness() < 80
    if os.environ.get("WIREGRAD_SCREENSHOT"):
        image.save(os.environ["WIREGRAD_SCREENSHOT"])
