"""`htsr report A --compare B` (issue 17): the comparison page with the figures and table of htsr.compare, the
layers that changed highlighted; and --figure-format svg."""
import os
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
from htsr import cli  # noqa: E402
from htsr.report import build_compare_report  # noqa: E402

XSS = "<script>alert(2)</script>"


def heavy(rng, shape):
    return (rng.standard_t(2.5, size=shape) * 0.05).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    """B = A with 'scaled' x 3 (alpha unchanged, norms shifted), 'replaced' re-drawn Gaussian (alpha changes a
    lot), 'gone' removed and 'new' added; the layer named XSS unchanged."""
    rng = np.random.default_rng(4)
    a = {"enc.same.weight": heavy(rng, (100, 200)), "enc.scaled.weight": heavy(rng, (80, 160)),
         "enc.replaced.weight": heavy(rng, (120, 240)), "enc.gone.weight": heavy(rng, (60, 90)),
         f"enc.{XSS}.weight": heavy(rng, (70, 140))}
    b = dict(a, **{"enc.scaled.weight": a["enc.scaled.weight"] * 3.0,
                   "enc.replaced.weight": rng.standard_normal((120, 240)).astype(np.float32),
                   "enc.new.weight": heavy(rng, (60, 90))})
    del b["enc.gone.weight"]
    return a, b


def rows(page):
    table = page.split('<table id="compare-table">', 1)[1].split("</table>", 1)[0]
    return {re.search(r'<td class="text">([^<]*)</td>', r).group(1): (cls, r)
            for cls, r in re.findall(r'<tr class="([a-z]*)">(.*?)</tr>', table, flags=re.S)}


def test_compare_page_highlights_changed_layers(pair):
    a, b = htsr.analyze(pair[0]), htsr.analyze(pair[1])
    page, table = build_compare_report(a, b, "base", "tuned")
    by = rows(page)
    assert by["enc.replaced"][0] == "changed" and "alpha +" in by["enc.replaced"][1]
    assert by["enc.same"][0] == "" and by["enc.scaled"][0] == ""  # scaling moves norms, not alpha
    assert by["enc.gone"][0] == "missing" and "only in A" in by["enc.gone"][1]
    assert by["enc.new"][0] == "missing" and "only in B" in by["enc.new"][1]
    assert list(by)[:3] == ["enc.replaced", "enc.gone", "enc.new"]  # the layers that stand out come first
    scaled = table.set_index("longname").loc["enc.scaled"]
    assert scaled["log_spectral_norm_diff"] == pytest.approx(2 * np.log10(3.0), abs=1e-6)  # float32 weights
    assert page.count("data:image/png;base64,") == 3  # alpha, alpha_weighted, log_spectral_norm
    assert "3 stand out" in page and "A: base" in page and "B: tuned" in page


def test_compare_page_escapes_names(pair):
    page, _ = build_compare_report(htsr.analyze(pair[0]), htsr.analyze(pair[1]), f"a{XSS}", "b")
    assert XSS not in page and page.count("<script>") == 1
    assert "enc.&lt;script&gt;alert(2)&lt;/script&gt;" in page and f"A: a{XSS}" not in page


@pytest.fixture()
def files(pair, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    paths = []
    for name, state in zip(("base", "tuned"), pair):
        paths.append(str(tmp_path / f"{name}.safetensors"))
        st.save_file(state, paths[-1])
    return paths


def test_cli_report_compare(files, tmp_path, capsys):
    out = tmp_path / "diff.html"
    code = cli.main(["report", files[0], "-o", str(out), "--compare", files[1], "--plots", str(tmp_path / "f")])
    stdout = capsys.readouterr().out
    assert code == 0 and "3 layer(s) stand out" in stdout and "compare:" in stdout
    assert "compare-table" in out.read_text()
    assert sorted(os.listdir(tmp_path / "f")) == ["htsr.compare.alpha.png", "htsr.compare.alpha_weighted.png",
                                                  "htsr.compare.log_spectral_norm.png"]
    assert cli.main(["report", files[0], "-o", str(out), "--compare", str(tmp_path / "missing.safetensors")]) == 2


def test_cli_report_compare_with_failed_layers_exits_1(files, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    broken = str(tmp_path / "broken.safetensors")
    st.save_file({"enc.same.weight": np.full((100, 200), np.nan, np.float32)}, broken)
    assert cli.main(["report", files[0], "-o", str(tmp_path / "d.html"), "--compare", broken]) == 1
    assert "failed in B" in (tmp_path / "d.html").read_text()


def test_cli_figure_format_svg(files, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli.main(["report", files[0], "-o", str(out), "--figure-format", "svg", "--plots", str(tmp_path / "f")]) == 0
    page = out.read_text()
    assert "data:image/png" not in page and page.count("data:image/svg+xml;base64,") == 4 + 5
    written = os.listdir(tmp_path / "f")
    assert written and all(name.endswith(".svg") for name in written)
    assert len([n for n in written if n.startswith("ww.layer")]) == 5 * 5
    with open(tmp_path / "f" / "ww.layer0.esd.svg") as f:
        assert "<svg" in f.read()
    assert cli.main(["report", files[0], "-o", str(out), "--figure-format", "jpg"]) == 2


def test_compare_page_in_headless_chromium(pair, tmp_path):
    from test_report import chromium
    from test_report_views import run_chromium

    if chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    a = htsr.analyze(pair[0]).assign(longname=lambda t: t["longname"] + "." + "x" * 150)
    b = htsr.analyze(pair[1]).assign(longname=lambda t: t["longname"] + "." + "x" * 150)
    path = tmp_path / "diff.html"
    path.write_text(build_compare_report(a, b)[0])
    attr = run_chromium(path, tmp_path, 1400)
    assert int(attr("data-page-width")) <= 1400
    client, scroll = map(int, attr("data-box").split("/"))
    assert client < 1400 < scroll
