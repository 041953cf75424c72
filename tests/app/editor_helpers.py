"""Small helpers for driving the editor as a user would."""

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest


def view_point(view, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def drag(view, start: QPointF, end: QPointF, steps: int = 5) -> None:
    """Press the left button at a scene point, move in steps, release at another."""
    vp = view.viewport()
    a, b = view_point(view, start), view_point(view, end)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    for i in range(1, steps + 1):
        p = QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps)
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, b)


def port(scene, node_id: str, name: str, output: bool) -> QPointF:
    return scene.node_items[node_id].port_pos(name, output)


def center(scene, node_id: str) -> QPointF:
    item = scene.node_items[node_id]
    return item.mapToScene(item.rect.center())
