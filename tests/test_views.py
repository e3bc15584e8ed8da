"""Interactive views of the static book (skinlab.plots.views), the LeNet diagram and the figure
formats of the book's kernels: what the browser test (tests/test_book.py) relies on."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinlab import plots
from skinlab.data import CLASSES
from skinlab.plots import views


def _frame(color, alt="a picture", note=""):
    data, mime = views.encode_image(Image.new("RGB", (20, 10), color), "png")
    return views.Frame(data, mime, alt, note)


def test_view_html_holds_every_frame_and_no_code_in_the_book(monkeypatch):
    view = views.View([("colour", [("r", "red"), ("g", "green")]), ("size", [("s", "small")])],
                      {("r", "s"): _frame("red", "red square", "R"), ("g", "s"): _frame("green", "green square", "G")},
                      caption="Pick a colour")
    monkeypatch.setenv("SKINLAB_BOOK_BUILD", "1")
    html = view.to_html()
    assert "<script" not in html  # the book serves VIEW_JS once, as a static file
    keys = re.findall(r'data-key="([^"]+)"', html)
    assert keys == ["r|s", "g|s"]
    imgs = re.findall(r"<img [^>]+>", html)
    assert [" hidden" in i for i in imgs] == [False, True]  # the first combination shows first
    assert re.findall(r'alt="([^"]+)"', html) == ["red square", "green square"]
    assert html.count("<select") == 2 and "Pick a colour" in html
    # each frame decodes to its picture
    src = re.findall(r'src="data:image/png;base64,([^"]+)"', html)[1]
    assert Image.open(io.BytesIO(base64.b64decode(src))).getpixel((0, 0)) == (0, 128, 0)
    monkeypatch.delenv("SKINLAB_BOOK_BUILD")
    assert views.VIEW_JS.strip()[:20] in view.to_html()  # a live notebook gets the script inline


def test_view_rejects_incomplete_or_heavy_frames():
    with pytest.raises(ValueError, match="missing"):
        views.View([("c", [("a", "A"), ("b", "B")])], {("a",): _frame("red")})
    with pytest.raises(ValueError, match="alt"):
        views.View([("c", [("a", "A")])], {("a",): _frame("red", alt=" ")})
    heavy = views.Frame(b"x" * (views.MAX_FRAME_BYTES + 1), "image/jpeg", "too big")
    with pytest.raises(ValueError, match="limit"):
        views.View([("c", [("a", "A")])], {("a",): heavy})
    with pytest.raises(ValueError, match="distinct"):
        views.View([("c", [("a", "A"), ("a", "B")])], {("a",): _frame("red")})
    with pytest.raises(ValueError, match="fmt"):
        views.encode_image(Image.new("RGB", (2, 2)), "gif")


@pytest.fixture()
def meta_with_photos(tmp_path):
    rows = []
    for k, code in enumerate(CLASSES):
        for j in range(3):
            path = tmp_path / f"{code}{j}.jpg"
            Image.new("RGB", (60, 45), (30 * k, 20 * j, 100)).save(path)
            rows.append({"image_id": f"ISIC_{k}{j}", "dx": code, "path": str(path)})
    return pd.DataFrame(rows)


def test_class_browser_one_strip_per_class_and_draw(meta_with_photos):
    view = views.class_browser(meta_with_photos, n_images=2, draws=2, thumb=(40, 30))
    assert set(view.frames) == {(c, d) for c in CLASSES for d in ("0", "1")}
    frame = view.frames[("mel", "0")]
    assert frame.mime == "image/jpeg"
    assert Image.open(io.BytesIO(frame.data)).size == (2 * 40 + 4, 30)
    assert "class mel" in frame.alt and "ISIC_4" in frame.alt  # says what it shows, not a path
    assert "/" not in frame.alt
    with pytest.raises(ValueError, match="no image of class 'df'"):
        views.class_browser(meta_with_photos[meta_with_photos["dx"] != "df"])
    with pytest.raises(ValueError, match="path"):
        views.class_browser(meta_with_photos.drop(columns=["path"]))


def test_gradcam_browser_frames_change_with_class_and_colour_map():
    image = np.full((30, 40, 3), 0.5)
    mask = np.zeros((30, 40))
    mask[10:20, 10:30] = 1
    cams = {c: np.eye(10)[::-1] * (c + 1) / 7 for c in range(7)}  # a different map per class
    view = views.gradcam_browser([{"key": 0, "label": "img A (mel)", "image": image, "mask": mask}],
                                 explain=lambda key, c: cams[c], probability=lambda key, c: 0.1 * c,
                                 size=(80, 60))
    assert len(view.frames) == 7 * 2
    a, b = view.frames[("0", "mel", "jet")], view.frames[("0", "nv", "jet")]
    assert a.data != b.data and a.data != view.frames[("0", "mel", "cividis")].data
    assert "class mel" in a.alt and "cividis" in view.frames[("0", "mel", "cividis")].alt
    assert "probability 0.40" in a.note
    picture = np.asarray(Image.open(io.BytesIO(a.data)))
    assert picture.shape[1] > 80  # the colour bar beside the heat map
    with pytest.raises(ValueError, match="lacks"):
        views.gradcam_browser([{"key": 0}], explain=lambda k, c: cams[c])
    with pytest.raises(ValueError, match="colour map"):
        views.gradcam_browser([{"key": 0, "label": "x", "image": image}], explain=lambda k, c: cams[c],
                              cmaps=("rainbow",))


def test_lenet_diagram_shapes_come_from_the_model():
    from skinlab.models import LeNet

    shapes = plots.diagrams.layer_shapes(LeNet())
    assert shapes[0][2] == (3, 32, 32) and shapes[-1][2] == (7,)
    assert ("flatten", "Flatten", (400,)) in shapes
    fig = plots.lenet_diagram(LeNet(num_classes=5))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"32x32\n3 channels", "28x28\n6 maps", "5x5\n16 maps", "400", "120", "84", "5"} <= texts
    assert "LeNet" in fig._suptitle.get_text()
    with pytest.raises(TypeError, match="nn.Sequential"):
        plots.diagrams.layer_shapes(object())


def test_dermoscopic_example_is_a_photo_figure(meta_with_photos):
    fig = plots.dermoscopic_example(meta_with_photos, codes=("nv", "mel"))
    assert [ax.get_title().split(" (")[0] for ax in fig.axes] == ["Melanocytic nevi", "Melanoma"]
    assert fig.skinlab_photo
    with pytest.raises(ValueError, match="unknown"):
        plots.dermoscopic_example(meta_with_photos, codes=("xyz",))


def test_book_display_sends_photos_as_jpeg_and_drawings_as_png():
    from IPython.core.interactiveshell import InteractiveShell
    import matplotlib.pyplot as plt

    shell = InteractiveShell.instance()
    try:
        assert plots.book_display(shell)
        photo = plt.figure()
        photo.skinlab_photo = True
        drawing = plt.figure()
        data, _ = shell.display_formatter.format(photo)
        assert "image/jpeg" in data and "image/png" not in data
        assert Image.open(io.BytesIO(data["image/jpeg"] if isinstance(data["image/jpeg"], bytes)
                                     else base64.b64decode(data["image/jpeg"]))).format == "JPEG"
        data, _ = shell.display_formatter.format(drawing)
        assert "image/png" in data and "image/jpeg" not in data
        plt.close("all")
    finally:
        InteractiveShell.clear_instance()


def test_view_text_form_is_short():
    view = views.View([("c", [("a", "A")])], {("a",): _frame("red", "red square")})
    assert len(repr(view)) < 200 and "1 pictures" in repr(view)
    assert "base64" not in repr(view.frames[("a",)])
