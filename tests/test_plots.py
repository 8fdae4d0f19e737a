"""Per-layer figures, overview and comparison figures (python/htsr/plots/, compare.py)."""
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402  (matplotlib requires pillow)

import htsr  # noqa: E402
from htsr import plots  # noqa: E402
from htsr.compare import compare_details  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def heavy(rng, rows, cols, df=2.5, scale=0.05):
    return (rng.standard_t(df, size=(rows, cols)) * scale).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    """Layer ids follow insertion order: 0, 1 analyzable, 2 all-NaN (fails)."""
    rng = np.random.default_rng(3)
    return {"enc.a.weight": heavy(rng, 120, 240), "enc.b.weight": rng.standard_normal((90, 150)).astype(np.float32),
            "enc.nan.weight": np.full((40, 60), np.nan, np.float32)}


def assert_png(path, size=(640, 480)):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size == size
        extrema = im.convert("L").getextrema()
        assert extrema[0] < 100 and extrema[1] > 200, "blank image"


def test_layer_figures_written_with_reference_names(model, tmp_path):
    details = htsr.analyze(model, plot=True, savefig=str(tmp_path / "img"))
    assert "esd" not in details.columns  # only kept with return_esd=True
    expected = {f"ww.layer{i}.{k}.png" for i in (0, 1) for k in ("esd", "esd2", "esd3", "esd4", "esd5")}
    assert set(os.listdir(tmp_path / "img")) == expected  # the failed layer has no eigenvalues: no figures
    for name in expected:
        assert_png(tmp_path / "img" / name)


def test_parallel_rendering_is_identical_to_serial(model, tmp_path):
    details = htsr.analyze(model, return_esd=True)
    serial = plots.plot_layers(details, str(tmp_path / "s"), workers=1)
    parallel = plots.plot_layers(details, str(tmp_path / "p"), workers=2)
    assert [os.path.basename(p) for p in serial] == [os.path.basename(p) for p in parallel]
    assert len(serial) == 10
    for a, b in zip(serial, parallel):
        assert open(a, "rb").read() == open(b, "rb").read(), a


def test_plot_needs_a_folder(model):
    with pytest.raises(ValueError, match="savefig"):
        htsr.analyze(model, plot=True, savefig=False)
    with pytest.raises(ValueError, match="return_esd"):
        plots.plot_layers(htsr.analyze(model), "unused")


def test_facade_plot_default_folder(model, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(240, 120)
    lin.weight.data = torch.from_numpy(model["enc.a.weight"])
    monkeypatch.chdir(tmp_path)
    htsr.WeightWatcher(torch.nn.Sequential(lin)).analyze()
    assert not (tmp_path / "ww-img").exists()  # plot=False writes nothing
    htsr.WeightWatcher(torch.nn.Sequential(lin)).analyze(plot=True)
    files = sorted(os.listdir(tmp_path / "ww-img"))
    assert len(files) == 5 and all(f.startswith("ww.layer") for f in files)


def test_candidate_curves_match_the_reference_fitter(model):
    """The D-vs-xmin and alpha-vs-xmin figures plot the reference fitter's curves."""
    ww_powerlaw = pytest.importorskip("weightwatcher.WW_powerlaw")
    details = htsr.analyze(model, return_esd=True)
    row = details.iloc[0]
    data = plots.layer_plot_data(row)
    evals = np.sort(row["esd"])
    fit = ww_powerlaw.WWFit(evals[evals > 1e-5])  # the reference fits the eigenvalues above its threshold
    assert data.xmin == pytest.approx(fit.xmin, rel=1e-9)
    assert data.alpha == pytest.approx(fit.alpha, rel=1e-6)
    n = min(len(data.xmins), len(fit.xmins))
    assert n > 50
    np.testing.assert_allclose(data.xmins[:n], np.asarray(fit.xmins)[:n], rtol=1e-9)
    np.testing.assert_allclose(data.Ds[:n], np.asarray(fit.Ds)[:n], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(data.alphas[:n], np.asarray(fit.alphas)[:n], rtol=1e-6)


# ---- image comparison against the reference tool's own figure ----

def plot_area(path):
    """The pixels inside the axes frame (the black rectangle), as an RGB array."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    dark = (rgb.sum(axis=2) < 150)
    rows = np.where(dark.sum(axis=1) > 0.5 * rgb.shape[1])[0]
    cols = np.where(dark.sum(axis=0) > 0.5 * rgb.shape[0])[0]
    assert len(rows) >= 2 and len(cols) >= 2, f"no axes frame found in {path}"
    return rgb[rows[0] + 2:rows[-1] - 1, cols[0] + 2:cols[-1] - 1]


def masks(area, shape=(150, 200)):
    r, g, b = area[..., 0], area[..., 1], area[..., 2]
    blue = (r < 90) & (g > 90) & (g < 150) & (b > 150)  # tab:blue histogram bars
    red = (r > 200) & (g < 80) & (b < 80)

    def resize(m):
        return np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(shape[::-1], Image.BILINEAR)) > 127

    return resize(blue), red


def test_loglog_esd_matches_reference_figure(tmp_path):
    """Same fixed synthetic layer through weightwatcher 0.7.7 (plot=True) and htsr: inside the axes, the
    histogram occupies the same region and the xmin line sits at the same relative position."""
    torch = pytest.importorskip("torch")
    ww = pytest.importorskip("weightwatcher")
    rng = np.random.default_rng(7)
    lin = torch.nn.Linear(400, 200)
    lin.weight.data = torch.from_numpy(heavy(rng, 200, 400))
    model = torch.nn.Sequential(lin)
    ww.WeightWatcher(model=model).analyze(plot=True, savefig=str(tmp_path / "ref"))
    htsr.WeightWatcher(model).analyze(plot=True, savefig=str(tmp_path / "ours"))
    ref_files = sorted(os.listdir(tmp_path / "ref"))
    assert sorted(os.listdir(tmp_path / "ours")) == ref_files
    name = "ww.layer1.esd.png"
    ref_blue, ref_red = masks(plot_area(tmp_path / "ref" / name))
    our_blue, our_red = masks(plot_area(tmp_path / "ours" / name))
    iou = (ref_blue & our_blue).sum() / (ref_blue | our_blue).sum()
    assert iou > 0.85, iou
    # the xmin line: the column with the most red pixels, as a fraction of the plot width
    ref_x = np.argmax(ref_red.sum(axis=0)) / ref_red.shape[1]
    our_x = np.argmax(our_red.sum(axis=0)) / our_red.shape[1]
    assert abs(ref_x - our_x) < 0.02, (ref_x, our_x)


def test_image_comparison_detects_a_wrong_xmin(tmp_path):
    """The comparison above can fail: moving xmin moves the red line out of tolerance."""
    rng = np.random.default_rng(7)
    details = htsr.analyze({"w": heavy(rng, 200, 400)}, return_esd=True)
    d = plots.layer_plot_data(details.iloc[0])
    figs = plots.LayerFigures()
    plots.save(figs.figure(d, "esd"), str(tmp_path / "good.png"))
    d.xmin *= 2.5
    plots.save(figs.figure(d, "esd"), str(tmp_path / "bad.png"))
    _, good = masks(plot_area(tmp_path / "good.png"))
    _, bad = masks(plot_area(tmp_path / "bad.png"))
    assert abs(np.argmax(good.sum(axis=0)) - np.argmax(bad.sum(axis=0))) / good.shape[1] > 0.05


# ---- overview and comparison figures ----

def test_overview_figures(model, tmp_path):
    details = htsr.analyze(model)
    figs = plots.overview_figures(details, str(tmp_path), prefix="m")
    assert set(figs) == {"alpha", "alpha_weighted", "log_spectral_norm", "alpha_hist"}
    for name in figs:
        assert_png(tmp_path / f"m.{name}.png")
    ax = figs["alpha"].axes[0]
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [2.0, 6.0]
    ok = details[details["status"] == "success"]
    colors = ax.collections[0].get_facecolors()
    from matplotlib.colors import to_rgba

    for color, warning in zip(colors, ok["warning"]):
        assert tuple(color) == pytest.approx(to_rgba(plots.WARNING_COLORS[warning]))


def test_compare_matches_by_name_and_scaling_shifts_norms(tmp_path):
    rng = np.random.default_rng(5)
    a = {"x.weight": heavy(rng, 80, 160), "y.weight": heavy(rng, 60, 100), "only_a.weight": heavy(rng, 50, 70)}
    c = 3.0
    # B: y scaled by c, listed first (matching is by name, not by position), x unchanged, one new layer
    b = {"y.weight": a["y.weight"] * c, "x.weight": a["x.weight"].copy(), "only_b.weight": heavy(rng, 50, 70)}
    table = compare_details(htsr.analyze(a), htsr.analyze(b))
    by = table.set_index("longname")
    assert by.loc["x", "match"] == "both" and by.loc["y", "match"] == "both"
    assert by.loc["only_a", "match"] == "a only" and by.loc["only_b", "match"] == "b only"
    assert list(table["longname"]) == ["x", "y", "only_a", "only_b"]
    # scaling W by c multiplies every eigenvalue of W^T W by c^2: log10 norms shift by 2 log10 c, alpha is unchanged
    assert by.loc["y", "log_spectral_norm_diff"] == pytest.approx(2 * np.log10(c), abs=1e-9)
    assert by.loc["y", "alpha_diff"] == pytest.approx(0.0, abs=1e-6)
    assert by.loc["x", "log_spectral_norm_diff"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(by.loc["only_a", "alpha_diff"])
    figs = plots.comparison_figures(table, "A", "B", savedir=str(tmp_path), prefix="cmp")
    assert set(figs) == {"alpha", "alpha_weighted", "log_spectral_norm"}
    for name in figs:
        assert_png(tmp_path / f"cmp.{name}.png")
    bars = figs["log_spectral_norm"].axes[1].patches
    assert len(bars) == 4 and bars[1].get_height() == pytest.approx(2 * np.log10(c), abs=1e-9)


# ---- the speed devices keep the figures ----

def test_cached_text_matches_matplotlib_text(tmp_path, monkeypatch):
    """Cached glyph bitmaps (text origin on a whole pixel) give the image matplotlib's own text drawing
    gives, up to anti-aliased edges: few pixels differ, none by a shifted word."""
    from htsr.plots import _agg_text

    rng = np.random.default_rng(11)
    d = plots.layer_plot_data(htsr.analyze({"w": heavy(rng, 150, 300)}, return_esd=True).iloc[0])
    _agg_text.CachedTextRenderer._bitmaps.clear()
    for kind in plots.LAYER_KINDS:
        plots.save(plots.LayerFigures().figure(d, kind), str(tmp_path / f"cached.{kind}.png"))
    assert len(_agg_text.CachedTextRenderer._bitmaps) > 20  # the cache was used
    monkeypatch.setattr(_agg_text, "_enabled", False)
    for kind in plots.LAYER_KINDS:
        plots.save(plots.LayerFigures().figure(d, kind), str(tmp_path / f"plain.{kind}.png"))
        a = np.asarray(Image.open(tmp_path / f"cached.{kind}.png").convert("L")).astype(int)
        b = np.asarray(Image.open(tmp_path / f"plain.{kind}.png").convert("L")).astype(int)
        differ = np.abs(a - b) > 60
        assert differ.mean() < 0.02, (kind, differ.mean())
        # a glyph off by more than a pixel would leave differing pixels away from every edge of b
        edges = np.zeros_like(differ)
        edges[1:-1, 1:-1] = (np.abs(np.diff(b, axis=0))[:-1, 1:-1] > 30) | (np.abs(np.diff(b, axis=0))[1:, 1:-1] > 30) \
            | (np.abs(np.diff(b, axis=1))[1:-1, :-1] > 30) | (np.abs(np.diff(b, axis=1))[1:-1, 1:] > 30)
        assert (differ & ~edges).sum() < 50, kind


def test_png_writer_round_trips_pixels():
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    import io

    from htsr.plots.canvas import png_bytes

    with Image.open(io.BytesIO(png_bytes(rgba.tobytes(), 5, 7))) as im:
        assert im.mode == "RGB" and im.size == (5, 7)
        np.testing.assert_array_equal(np.asarray(im), rgba[..., :3])


# ---- mp_fit and randomize figures ----

@pytest.fixture(scope="module")
def mp_model():
    """Layer 0: 300x200 heavy-tailed (Q = 1.5); layer 1: square (Q = 1, the quarter-circle case)."""
    rng = np.random.default_rng(9)
    return {"a.weight": heavy(rng, 300, 200), "sq.weight": (rng.standard_normal((150, 150)) * 0.02).astype(np.float32)}


MP_KINDS = {0: ["mpfit2"], 1: ["mpfit1", "mpfit2"]}


@pytest.mark.parametrize("mp_fit,randomize", [(True, False), (False, True), (True, True)])
def test_mp_fit_and_randomize_figures(mp_model, tmp_path, mp_fit, randomize):
    folder = tmp_path / "img"
    details = htsr.analyze(mp_model, plot=True, savefig=str(folder), mp_fit=mp_fit, randomize=randomize, seed=3)
    assert "rand_esd" not in details.columns and "esd" not in details.columns
    expected = set()
    for layer in (0, 1):
        kinds = list(plots.LAYER_KINDS)
        if mp_fit:
            kinds += MP_KINDS[layer]
        if randomize:
            kinds += ["randesd1", "randesd2"] + [("rand" if mp_fit else "") + k for k in MP_KINDS[layer]]
        expected |= {f"ww.layer{layer}.{k}.png" for k in kinds}
    assert set(os.listdir(folder)) == expected
    for name in expected:
        assert_png(folder / name)


def test_mp_and_random_figures_mark_the_fitted_values(mp_model):
    from htsr.plots.mp import MPPlotData

    details = htsr.analyze(mp_model, return_esd=True, mp_fit=True, randomize=True, seed=3)
    row = details.iloc[0]
    d = plots.layer_plot_data(row)
    assert isinstance(d.mp, MPPlotData) and isinstance(d.rand_mp, MPPlotData)
    # the figure's fit is the table's fit
    assert d.mp.sigma == pytest.approx(row["sigma_mp"], rel=1e-12)
    assert d.mp.num_spikes == row["num_spikes"]
    assert d.rand_mp.sigma == pytest.approx(row["rand_sigma_mp"], rel=1e-12)
    # the dashed line: bulk edge plus the Tracy-Widom allowance (weightwatcher's bulk_max_TW)
    Q, M = row["N"] / row["M"], row["M"]
    bulk_max = (d.mp.sigma * (1 + 1 / np.sqrt(Q))) ** 2
    cutoff = bulk_max + np.sqrt(1 / np.sqrt(Q) * bulk_max ** (2 / 3) * M ** (-2 / 3))
    assert d.mp.cutoff == pytest.approx(cutoff, rel=1e-12)
    assert (d.mp.values > d.mp.cutoff).sum() == row["num_spikes"]
    figs = plots.LayerFigures()
    ax = figs.figure(d, "mpfit2").axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_xdata()[0] == pytest.approx(cutoff, rel=1e-12)
    ax = figs.figure(d, "randesd1").axes[0]
    orange = [line for line in ax.get_lines() if line.get_color() == "orange"]
    assert orange[0].get_xdata()[0] == pytest.approx(row["max_rand_eval"], rel=1e-12)
    assert row["max_rand_eval"] == pytest.approx(np.max(row["rand_esd"]), rel=1e-12)


def test_mp_density_matches_the_reference_curves():
    rmt = pytest.importorskip("weightwatcher.RMT_Util")
    from htsr._native import core

    for Q, sigma in ((1.5, 0.9), (4.0, 1.1)):
        x, y = rmt.marchenko_pastur_pdf(0.0, 10.0, Q, sigma)
        # rounding can put the reference's last grid point past the edge (NaN there); the law is 0 outside
        np.testing.assert_allclose(core.mp_density(x, Q, sigma, "mp"), np.nan_to_num(y), rtol=1e-12, atol=1e-300)
    x, y = rmt.quarter_circle_pdf(0.0, 3.0, 0.8)
    # the reference adds 1e-9 under the square root; the fit's law does not
    np.testing.assert_allclose(core.mp_density(x, 1.0, 0.8, "quarter_circle"), y, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="law"):
        core.mp_density(x, 1.0, 0.8, "other")


def test_mp_and_random_file_names_match_the_reference(tmp_path):
    """weightwatcher 0.7.7 writes the same files per layer with mp_fit=True and with randomize=True."""
    torch = pytest.importorskip("torch")
    ww = pytest.importorskip("weightwatcher")
    rng = np.random.default_rng(4)
    lin = torch.nn.Linear(200, 300)
    lin.weight.data = torch.from_numpy(heavy(rng, 300, 200))
    model = torch.nn.Sequential(lin)
    for opts in ({"mp_fit": True}, {"randomize": True}):
        ref, ours = tmp_path / f"ref{len(opts)}{list(opts)[0]}", tmp_path / f"ours{list(opts)[0]}"
        ww.WeightWatcher(model=model).analyze(plot=True, savefig=str(ref), **opts)
        htsr.WeightWatcher(model).analyze(plot=True, savefig=str(ours), **opts)
        assert sorted(os.listdir(ours)) == sorted(os.listdir(ref)), opts
