"""Tests for skinlab.plots: structure and plotted values of every figure, checked against
independent computations (pandas, scikit-learn, hand-made inputs)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score  # noqa: E402

from skinlab import plots  # noqa: E402
from skinlab.plots import CLASS_NAMES, CLASSES  # noqa: E402
from skinlab.split import DEFAULT_FRACTIONS  # noqa: E402

# hand-made class counts; vasc has none, to exercise empty classes
COUNTS = {"akiec": 2, "bcc": 3, "bkl": 4, "df": 1, "mel": 5, "nv": 12, "vasc": 0}
# one RGB colour per class, so a drawn thumbnail reveals which class it came from
CLASS_RGB = {c: (30 * i + 20, 200 - 25 * i, (70 * i) % 256) for i, c in enumerate(CLASSES)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def meta():
    dx = [c for c in CLASSES for _ in range(COUNTS[c])]
    n = len(dx)
    rng = np.random.default_rng(1)
    ages = rng.choice(np.arange(0, 90, 5), size=n).astype(float)
    ages[[0, 7]] = np.nan
    sex = ["male", "female", "unknown"] * (n // 3) + ["male"] * (n % 3)
    loc = ["back"] * 10 + ["face"] * 6 + ["scalp"] * 4 + ["trunk"] * (n - 20)
    dx_type = ["histo"] * 15 + ["follow_up"] * (n - 15)
    return pd.DataFrame({
        "lesion_id": [f"HAM_{i:07d}" for i in range(n)],
        "image_id": [f"ISIC_{i:07d}" for i in range(n)],
        "dx": dx, "dx_type": dx_type, "age": ages, "sex": sex, "localization": loc,
    })


def _bar_heights(ax):
    return [p.get_height() for p in ax.patches if isinstance(p, Rectangle)]


def _tick_labels(axis):
    return [t.get_text() for t in axis.get_ticklabels()]


# --------------------------------------------------------------------------- data exploration


def test_class_distribution_heights_labels_and_percent(meta):
    fig = plots.class_distribution(meta)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == list(CLASSES)
    expected = meta["dx"].value_counts().reindex(list(CLASSES), fill_value=0).tolist()
    assert _bar_heights(ax) == expected
    texts = [t.get_text() for t in ax.texts]
    total = len(meta)
    assert f"12\n({100 * 12 / total:.1f}%)" in texts
    assert "0\n(0.0%)" in texts  # the empty class is labelled, not dropped


def test_class_distribution_draws_into_given_axes_and_log(meta):
    fig, (left, right) = plt.subplots(1, 2)
    out = plots.class_distribution(meta, ax=right, log=True)
    assert out is fig
    assert right.get_yscale() == "log"
    assert len(left.patches) == 0 and len(right.patches) == len(CLASSES)


def test_class_distribution_rejects_unknown_dx(meta):
    meta.loc[3, "dx"] = "melanoma"
    with pytest.raises(ValueError, match="melanoma"):
        plots.class_distribution(meta)
    with pytest.raises(ValueError, match="'dx'"):
        plots.class_distribution(meta.drop(columns="dx"))


def test_metadata_overview_panels(meta):
    fig = plots.metadata_overview(meta)
    assert len(fig.axes) == 4
    ax_age, ax_sex, ax_loc, ax_type = fig.axes
    assert "2 missing" in ax_age.get_title()
    assert sum(_bar_heights(ax_age)) == meta["age"].notna().sum()
    sex_counts = meta["sex"].value_counts()
    assert dict(zip(_tick_labels(ax_sex.xaxis), _bar_heights(ax_sex))) == sex_counts.to_dict()
    # horizontal bars, largest at the top (= last y position)
    widths = [p.get_width() for p in ax_loc.patches]
    assert widths == sorted(widths)
    assert _tick_labels(ax_loc.yaxis)[-1] == meta["localization"].value_counts().index[0]
    assert dict(zip(_tick_labels(ax_type.xaxis), _bar_heights(ax_type))) == {
        "histo": 15, "follow_up": len(meta) - 15}


def test_metadata_overview_names_the_data_it_shows(meta):
    assert fig_title(plots.metadata_overview(meta)).startswith("HAM10000 metadata")
    title = fig_title(plots.metadata_overview(meta, dataset="synthetic sample"))
    assert title.startswith("synthetic sample metadata") and "HAM10000" not in title


def fig_title(fig) -> str:
    return fig._suptitle.get_text() if fig._suptitle is not None else ""


def test_metadata_overview_stacked_by_dx(meta):
    fig = plots.metadata_overview(meta, by_dx=True)
    ax_sex = fig.axes[1]
    # stacked segments at one x add up to that category's count
    totals = {}
    for p in ax_sex.patches:
        x = round(p.get_x() + p.get_width() / 2)
        totals[x] = totals.get(x, 0) + p.get_height()
    labels = _tick_labels(ax_sex.xaxis)
    assert {labels[x]: v for x, v in totals.items()} == meta["sex"].value_counts().to_dict()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(CLASSES)


@pytest.mark.parametrize("kind", ["box", "violin"])
def test_age_by_class_medians(meta, kind):
    fig = plots.age_by_class(meta, kind=kind)
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == list(CLASSES)
    assert "2 images without age" in ax.get_title()
    if kind == "box":
        medians = [line.get_ydata()[0] for line in ax.lines
                   if line.get_gid() == "median" and np.isfinite(line.get_ydata()).all()]
        expected = meta.groupby("dx")["age"].median().reindex(list(CLASSES)).dropna()
        assert np.allclose(medians, expected.to_numpy())


def test_age_by_class_bad_kind(meta):
    with pytest.raises(ValueError, match="kind"):
        plots.age_by_class(meta, kind="swarm")


def test_split_shares_bars_and_targets(meta):
    split = pd.Series(["train", "train", "val", "test"] * 6 + ["train"] * (len(meta) - 24),
                      index=meta.index)
    fig = plots.split_shares(meta, split)
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == list(CLASSES)
    heights = np.array(_bar_heights(ax)).reshape(4, len(CLASSES))
    oracle = pd.crosstab(split, meta["dx"], normalize="index").reindex(
        columns=list(CLASSES), fill_value=0) * 100
    for row, name in zip(heights[:3], ["train", "val", "test"]):
        assert np.allclose(row, oracle.loc[name].to_numpy())
    overall = meta["dx"].value_counts(normalize=True).reindex(list(CLASSES), fill_value=0)
    assert np.allclose(heights[3], 100 * overall.to_numpy())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    # the targets shown are the default fractions (the figure was called without any)
    for target in DEFAULT_FRACTIONS:
        assert any(f"target {target:.0%}" in t for t in legend), (target, legend)


def test_split_shares_rejects_misaligned_split(meta):
    split = pd.Series("train", index=meta.index[:-1])
    with pytest.raises(ValueError, match="no entry"):
        plots.split_shares(meta, split)
    with pytest.raises(ValueError, match="holdout"):
        plots.split_shares(meta, pd.Series("holdout", index=meta.index))


def test_class_weights_from_tensor_with_counts():
    counts = [COUNTS[c] or 1 for c in CLASSES]
    freq = np.array(counts) / sum(counts)
    weights = torch.tensor(np.median(freq) / freq, dtype=torch.float32)
    fig = plots.class_weights(weights, counts=dict(zip(CLASSES, counts)), log=True)
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == list(CLASSES)
    assert np.allclose(_bar_heights(ax), weights.numpy())
    assert ax.get_yscale() == "log"
    assert any(t.get_text().endswith("n=12") for t in ax.texts)


def test_class_weights_wrong_length():
    with pytest.raises(ValueError, match="7 values"):
        plots.class_weights([1.0, 2.0])
    with pytest.raises(ValueError, match="vasc"):
        plots.class_weights({c: 1.0 for c in CLASSES[:-1]})


# --------------------------------------------------------------------------- images


@pytest.fixture
def meta_with_images(meta, tmp_path):
    paths = []
    for image_id, dx in zip(meta["image_id"], meta["dx"]):
        path = tmp_path / f"{image_id}.jpg"
        Image.new("RGB", (8, 6), CLASS_RGB[dx]).save(path, quality=100)
        paths.append(str(path))
    return meta.assign(path=paths)


def _shown_ids(fig):
    return [ax.get_title() for ax in fig.axes if ax.images]


def test_image_grid_rows_per_class(meta_with_images):
    n = 3
    fig = plots.image_grid(meta_with_images, n_per_class=n, seed=0)
    axes = np.array(fig.axes).reshape(len(CLASSES), n)
    for code, row in zip(CLASSES, axes):
        label = row[0].get_ylabel()
        assert label.startswith(code) and CLASS_NAMES[code].split()[0] in label
        shown = [ax for ax in row if ax.images]
        assert len(shown) == min(n, COUNTS[code])
        for ax in shown:  # each thumbnail is an image of this row's class
            pixel = ax.images[0].get_array()[2, 3] * 255
            assert np.allclose(pixel, CLASS_RGB[code], atol=6)
            assert meta_with_images.set_index("image_id").loc[ax.get_title(), "dx"] == code
    assert any(t.get_text() == "no images" for t in axes[CLASSES.index("vasc"), 0].texts)


def test_image_grid_seeded_sampling(meta_with_images):
    first = _shown_ids(plots.image_grid(meta_with_images, n_per_class=2, seed=3))
    again = _shown_ids(plots.image_grid(meta_with_images, n_per_class=2, seed=3))
    assert first == again
    others = {tuple(_shown_ids(plots.image_grid(meta_with_images, n_per_class=2, seed=s)))
              for s in range(6)}
    assert len(others) > 1  # the seed changes the sample (nv has 12 images to choose from)


def test_image_grid_custom_loader_and_missing_path(meta_with_images, meta):
    calls = []

    def loader(path):
        calls.append(path)
        return np.zeros((4, 4, 3), dtype=np.uint8)

    plots.image_grid(meta_with_images, n_per_class=1, loader=loader)
    assert len(calls) == sum(1 for c in CLASSES if COUNTS[c])
    with pytest.raises(ValueError, match="'path'"):
        plots.image_grid(meta)
    broken = meta_with_images.assign(path="/nonexistent/x.jpg")
    with pytest.raises(ValueError, match="x.jpg"):
        plots.image_grid(broken, n_per_class=1)


def test_augmentation_examples_unnormalises_tensors():
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)

    def normalise(img):  # deterministic "augmentation": to tensor + Normalize
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]

    fig = plots.augmentation_examples(image, normalise, n=4, mean=mean, std=std)
    assert len(fig.axes) == 5  # original + 4, spare grid cells removed
    assert fig.axes[0].get_title() == "original"
    for ax in fig.axes:
        assert np.allclose(ax.images[0].get_array(), rgb / 255, atol=1e-6)


def test_augmentation_examples_seeded_and_rng_restored():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))

    def flip_or_not(img):
        return img.transpose(Image.FLIP_LEFT_RIGHT) if torch.rand(1).item() < 0.5 else img

    torch.manual_seed(123)
    before = torch.get_rng_state()
    arrays = [[ax.images[0].get_array().copy() for ax in
               plots.augmentation_examples(image, flip_or_not, n=8, seed=7).axes]
              for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*arrays))
    flipped = [not np.array_equal(a, arrays[0][0]) for a in arrays[0][1:]]
    assert any(flipped) and not all(flipped)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is untouched


# --------------------------------------------------------------------------- training


HISTORY = {
    "train_loss": [1.9, 1.2, 0.9, 0.7],
    "val_loss": [1.8, 1.3, 1.1, 1.2],
    "train_acc": [0.4, 0.6, 0.7, 0.8],
    "val_acc": [0.5, 0.6, 0.72, 0.70],
    "val_balanced_acc": [0.2, 0.45, 0.40, 0.38],
}


def _vline_x(ax):
    return [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]


def test_training_curves_marks_best_balanced_epoch():
    fig = plots.training_curves(HISTORY)
    ax_loss, ax_acc = fig.axes
    assert _vline_x(ax_loss) == [2] and _vline_x(ax_acc) == [2]  # argmax balanced acc, not acc
    ys = [list(line.get_ydata()) for line in ax_loss.lines]
    assert HISTORY["train_loss"] in ys and HISTORY["val_loss"] in ys
    assert "epoch" in ax_loss.get_xlabel() and ax_acc.get_ylabel() == "accuracy"


def test_training_curves_list_of_dicts_and_val_acc_fallback():
    rows = [{k: v[i] for k, v in HISTORY.items() if k != "val_balanced_acc"} for i in range(4)]
    fig = plots.training_curves(rows)
    assert _vline_x(fig.axes[1]) == [3]  # best val_acc
    with pytest.raises(ValueError, match="val_loss"):
        plots.training_curves({k: v for k, v in HISTORY.items() if k != "val_loss"})
    with pytest.raises(ValueError, match="same nonzero length"):
        plots.training_curves({**HISTORY, "val_acc": [0.1]})


def test_lr_comparison_one_line_per_rate():
    other = {**HISTORY, "val_balanced_acc": [0.1, 0.2, 0.3, 0.5]}
    fig = plots.lr_comparison({"1e-3": HISTORY, "1e-5": other})
    (ax,) = fig.axes
    curves = {line.get_label(): list(line.get_ydata()) for line in ax.lines
              if line.get_label().startswith("1e-")}
    assert len(curves) == 2
    assert list(curves.values()) == [HISTORY["val_balanced_acc"], other["val_balanced_acc"]]
    assert "balanced" in ax.get_ylabel()
    # without balanced accuracy everywhere, falls back to accuracy
    no_bal = {k: v for k, v in HISTORY.items() if k != "val_balanced_acc"}
    assert "balanced" not in plots.lr_comparison({"a": HISTORY, "b": no_bal}).axes[0].get_ylabel()


# --------------------------------------------------------------------------- evaluation


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, size=200)  # class 6 (vasc) never occurs: an empty row
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 7, size=200))
    return y_true, y_pred


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_confusion_matrices_three_panels(predictions):
    y_true, y_pred = predictions
    cm = confusion_matrix(y_true, y_pred, labels=range(7))
    fig = plots.confusion_matrices(cm)
    assert len(fig.axes) == 6  # three matrices, then a colour bar for each
    bars = fig.axes[3:]
    assert all(ax.get_label() == "<colorbar>" for ax in bars)
    assert bars[0].get_ylabel() == "images" and bars[1].get_ylabel() == "share of the row"
    assert np.isclose(bars[0].get_ylim()[1], cm.max()) and np.isclose(bars[1].get_ylim()[1], 1.0)
    counts, normalised, ideal = (np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
                                 for ax in fig.axes[:3])
    assert np.array_equal(counts, cm)
    with np.errstate(invalid="ignore"):
        oracle = confusion_matrix(y_true, y_pred, labels=range(7), normalize="true")
    assert np.allclose(normalised[:6], oracle[:6])
    assert np.isnan(normalised[6]).all()  # no vasc images: undefined, not zero
    assert np.array_equal(ideal, np.eye(7))
    for ax in fig.axes[:3]:
        assert _tick_labels(ax.xaxis) == list(CLASSES) == _tick_labels(ax.yaxis)
        assert len(ax.texts) == 49
    assert f"{balanced_accuracy_score(y_true, y_pred):.3f}" in fig.axes[1].get_title()
    # stacked by default (legible at phone width); side by side on request
    positions = [ax.get_position() for ax in fig.axes[:3]]
    assert positions[0].y0 > positions[1].y0 > positions[2].y0
    wide = plots.confusion_matrices(cm, ncols=3)
    assert len({round(ax.get_position().y0, 3) for ax in wide.axes[:3]}) == 1
    with pytest.raises(ValueError, match="ncols"):
        plots.confusion_matrices(cm, ncols=4)


def test_confusion_matrices_rejects_bad_shape():
    with pytest.raises(ValueError, match="7x7"):
        plots.confusion_matrices(np.ones((3, 3)))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_per_class_recall_bars_and_balanced_line(predictions):
    y_true, y_pred = predictions
    recalls = recall_score(y_true, y_pred, labels=range(6), average=None)
    recalls = np.append(recalls, np.nan)  # vasc absent from the test set
    fig = plots.per_class_recall(recalls, baseline=1 / 7)
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == list(CLASSES)
    assert np.allclose(_bar_heights(ax)[:6], recalls[:6])
    hlines = [line.get_ydata()[0] for line in ax.lines]
    assert np.isclose(hlines[0], balanced_accuracy_score(y_true, y_pred))
    assert np.isclose(hlines[1], 1 / 7)
    assert "n/a" in [t.get_text() for t in ax.texts]


def test_per_class_recall_dict_and_baseline_bars():
    recalls = {c: i / 10 for i, c in enumerate(CLASSES)}
    base = {"per_class_recall": [0, 0, 0, 0, 0, 1, 0], "accuracy": 0.67}
    fig = plots.per_class_recall({"per_class_recall": recalls}, baseline=base)
    heights = _bar_heights(fig.axes[0])
    assert np.allclose(heights, [i / 10 for i in range(7)] + [0, 0, 0, 0, 0, 1, 0])
    # two models compared: the legend names both, never one of them "baseline"
    fig = plots.per_class_recall(recalls, baseline=base, label="EfficientNet-Lite0", baseline_label="LeNet")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "EfficientNet-Lite0" in legend and any(t.startswith("LeNet (balanced accuracy") for t in legend)
    assert not any("baseline" in t for t in legend)


def test_compare_models_bars_and_baseline_lines():
    results = {"LeNet": {"accuracy": 0.61, "balanced_accuracy": 0.53, "macro_f1": 0.4},
               "EfficientNet": {"accuracy": 0.76, "balanced_accuracy": 0.64}}
    baseline = {"accuracy": 0.669, "balanced_accuracy": 0.143}
    fig = plots.compare_models(results, baseline=baseline, split="test")
    (ax,) = fig.axes
    assert _tick_labels(ax.xaxis) == ["LeNet", "EfficientNet"]
    assert np.allclose(_bar_heights(ax), [0.61, 0.76, 0.53, 0.64])
    assert sorted(line.get_ydata()[0] for line in ax.lines) == [0.143, 0.669]
    assert ax.get_ylabel() == "score on the test split"
    with pytest.raises(ValueError, match="macro_f1"):
        plots.compare_models(results, metrics=("accuracy", "macro_f1"), split="test")


def test_compare_models_names_the_split_of_its_scores():
    # validation scores (chapter 12 ranks its tips on them) must not be labelled as test scores
    results = {"LeNet": {"accuracy": 0.61, "balanced_accuracy": 0.53}}
    ax = plots.compare_models(results, split="validation").axes[0]
    assert ax.get_ylabel() == "score on the validation split" and "test" not in ax.get_ylabel()
    with pytest.raises(TypeError):
        plots.compare_models(results)  # no default: the caller says which split
    with pytest.raises(ValueError, match="split"):
        plots.compare_models(results, split=" ")


# --------------------------------------------------------------------------- Grad-CAM


def test_gradcam_overlays_rows_and_mask_contour():
    images = [np.full((6, 8, 3), 0.5), np.full((6, 8, 3), 200, dtype=np.uint8)]
    cams = [np.linspace(0, 1, 12).reshape(3, 4), np.zeros((6, 8))]  # any resolution
    mask = np.zeros((12, 16))
    mask[3:9, 4:12] = 1
    fig = plots.gradcam_overlays(images, cams, titles=["a", "b"], masks=[mask, mask])
    assert len(fig.axes) == 5 and fig.axes[4].get_label() == "<colorbar>"  # the heat maps' scale
    assert "Grad-CAM" in fig.axes[4].get_ylabel()
    img_ax, cam_ax = fig.axes[:2]
    assert img_ax.get_title() == "a"
    assert np.allclose(fig.axes[2].images[0].get_array(), 200 / 255)
    assert len(cam_ax.images) == 1 and cam_ax.images[0].get_array().shape == (6, 8, 3)  # stretched over the image
    assert len(cam_ax.collections) == 1  # the mask contour
    # the contour sits on the mask border, in image pixel coordinates (mask is 2x the image)
    # mask columns 4..11 of 16 -> image x 1.5..5.5; rows 3..8 of 12 -> image y 1.0..4.0
    verts = cam_ax.collections[0].get_paths()[0].vertices
    assert np.allclose([verts[:, 0].min(), verts[:, 0].max()], [1.5, 5.5])
    assert np.allclose([verts[:, 1].min(), verts[:, 1].max()], [1.0, 4.0])


def test_gradcam_overlays_show_the_picture_of_gradcam_overlay():
    """One jet map and one blend for the book and the ``gradcam`` command: the overlay panel is
    exactly ``skinlab.heatmap.overlay`` of the image and the heat map (stretched bilinearly)."""
    from skinlab.heatmap import JET_LUT, overlay

    image = np.zeros((4, 256, 3))  # black: the overlay is the colour map itself
    ramp = np.tile(np.linspace(0, 1, 256), (4, 1))
    fig = plots.gradcam_overlays([image], [ramp], alpha=0.5)
    cam_ax = fig.axes[1]
    assert len(cam_ax.images) == 1
    shown = np.asarray(cam_ax.images[0].get_array())
    assert np.allclose(shown, overlay(image, ramp, alpha=0.5), atol=1e-6)
    levels = np.uint8(255 * ramp[0])  # the heat map's 256 levels, truncated as show_cam_on_image does
    assert np.abs(shown[0] * 255 - JET_LUT[levels]).max() <= 0.01  # the heatmap module's jet, not matplotlib's
    small = np.array([[0.0, 1.0], [1.0, 0.0]])  # a coarse map is stretched over the image
    fig = plots.gradcam_overlays([np.full((6, 8, 3), 0.5)], [small])
    assert np.asarray(fig.axes[1].images[0].get_array()).shape == (6, 8, 3)


def test_gradcam_overlays_validates_inputs():
    image = np.zeros((4, 4, 3))
    with pytest.raises(ValueError, match=r"cams\[0\].*\[0, 1\]"):
        plots.gradcam_overlays(image, np.full((4, 4), 2.0))
    with pytest.raises(ValueError, match="1 images but 2 cams"):
        plots.gradcam_overlays([image], [np.zeros((4, 4))] * 2)
    fig = plots.gradcam_overlays(image, np.zeros((4, 4)))  # a single image, no list
    assert len(fig.axes) == 3  # image, overlay, colour bar
    assert len(plots.gradcam_overlays(image, np.zeros((4, 4)), colorbar=False).axes) == 2
    with pytest.raises(ValueError, match="colour map 'rainbow'"):
        plots.gradcam_overlays(image, np.zeros((4, 4)), cmap="rainbow")


def test_gradcam_overlays_colour_blind_safe_map():
    """cmap="cividis" draws the ramp with matplotlib's cividis (not jet), and its colour bar too."""
    import matplotlib.pyplot as plt

    image = np.zeros((4, 256, 3))
    ramp = np.tile(np.linspace(0, 1, 256), (4, 1))
    fig = plots.gradcam_overlays([image], [ramp], alpha=1.0, cmap="cividis")
    shown = np.asarray(fig.axes[1].images[0].get_array())
    expected = plt.get_cmap("cividis")(np.uint8(255 * ramp[0]) / 255)[:, :3]
    expected = expected / expected.max()  # overlay rescales its brightest value to 1
    assert np.abs(shown[0] - expected).max() < 0.01
    bar = fig.axes[2]._colorbar
    for level in (0.0, 0.5, 1.0):
        assert np.allclose(bar.cmap(level)[:3], plt.get_cmap("cividis")(level)[:3], atol=0.01)
    assert np.array_equal(plots.colormap_lut("jet"), __import__("skinlab.heatmap").heatmap.JET_LUT)
    for name in plots.COLORBLIND_SAFE:
        assert plots.colormap_lut(name).shape == (256, 3)


# --------------------------------------------------------------------------- saving


def test_save_figure_writes_png_atomically_and_closes(meta, tmp_path):
    fig = plots.class_distribution(meta)
    target = tmp_path / "nested" / "dir" / "classes.png"
    out = plots.save_figure(fig, target)
    assert out == target and target.stat().st_size > 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(target) as img:
        img.verify()
    assert list(target.parent.iterdir()) == [target]  # no temp file left behind
    assert fig.number not in plt.get_fignums()


def test_save_figure_leaves_no_partial_file_on_error(tmp_path):
    fig = plt.figure()
    fig.savefig = None  # any failure while writing
    target = tmp_path / "x.png"
    with pytest.raises(TypeError):
        plots.save_figure(fig, target)
    assert list(tmp_path.iterdir()) == []


def test_no_figure_title_hardcodes_ham10000():
    """A figure drawn from the synthetic sample must not say HAM10000: titles take the data's name."""
    import re
    from pathlib import Path

    source = "\n".join(p.read_text() for p in Path(plots.__file__).parent.glob("*.py"))
    titles = re.findall(r"(?:set_title|suptitle)\(\s*f?[\"']([^\"']*)", source)
    assert titles, "no titles found: the pattern is stale"
    assert not [t for t in titles if "HAM10000" in t]
