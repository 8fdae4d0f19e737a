"""The report's issue 17 / issue 13 additions: views by matrix kind (or the fallback note), the experts section
with its flagged experts, SVG figures, and the details table scrolling in its own box in a 1400-pixel window."""
import base64
import os
import re
import subprocess

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
import htsr.plots  # noqa: E402
from htsr.report import build_report, write_report  # noqa: E402

from test_plots_views import trained_matrix  # noqa: E402
from test_report import chromium  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def llama():
    """Two Llama-named blocks (q, k, v, o, gate, up, down) and embeddings, analyzed with alpha_ci."""
    rng = np.random.default_rng(2)
    model = {"model.embed_tokens.weight": (rng.standard_t(3, (200, 64)) * 0.05).astype(np.float32)}
    for b in range(2):
        for part, name, shape in (("self_attn", "q_proj", (64, 64)), ("self_attn", "k_proj", (64, 64)),
                                  ("self_attn", "v_proj", (64, 64)), ("self_attn", "o_proj", (64, 64)),
                                  ("mlp", "gate_proj", (128, 64)), ("mlp", "up_proj", (128, 64)),
                                  ("mlp", "down_proj", (64, 128))):
            model[f"model.layers.{b}.{part}.{name}.weight"] = (rng.standard_t(3, shape) * 0.05).astype(np.float32)
    return htsr.analyze(model, return_esd=True, alpha_ci=True, bootstrap=20, seed=1)


@pytest.fixture(scope="module")
def moe():
    rng = np.random.default_rng(5)
    model = {}
    for block in range(2):
        for e in range(6):
            w = rng.standard_normal((256, 128)) * 0.05 if (block, e) == (1, 4) else \
                trained_matrix(rng, 256, 128, rng.uniform(0.33, 0.37))
            model[f"model.layers.{block}.mlp.experts.{e}.down_proj.weight"] = w.astype(np.float32)
    model[f"model.layers.0.mlp.experts.{XSS}.weight"] = (rng.standard_t(3, (64, 64)) * 0.05).astype(np.float32)
    return htsr.analyze(model, return_esd=True)


def section(page, anchor):
    return page.split(f'id="{anchor}"', 1)[1].split("<h2 ", 1)[0]


def test_kind_views_in_the_report(llama):
    page = build_report(llama, layer_figures="none")
    kinds = section(page, "kinds")
    assert kinds.count("data:image/png;base64,") == 2 and "follow no convention" not in kinds
    assert 'id="experts"' not in page  # no experts: no section
    assert page.index('id="overview"') < page.index('id="kinds"') < page.index('id="details"')


def test_unknown_names_fall_back_to_the_id_plot():
    rng = np.random.default_rng(1)
    details = htsr.analyze({"enc.a.weight": (rng.standard_t(3, (80, 40)) * 0.05).astype(np.float32),
                            "enc.b.weight": (rng.standard_t(3, (80, 40)) * 0.05).astype(np.float32)}, return_esd=True)
    page = build_report(details, layer_figures="none")
    assert "follow no convention" in section(page, "kinds") and "data:image" not in section(page, "kinds")
    assert section(page, "overview").count("data:image/png") == 4  # alpha per layer id among them


def test_experts_section_flags_the_dead_expert(moe):
    page = build_report(moe, layer_figures="none")
    experts = section(page, "experts")
    assert experts.count("data:image/png;base64,") == 1
    table = experts.split('<table id="expert-outliers">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"\">(.*?)</tr>", table, flags=re.S)
    assert len(rows) == 1 and "model.layers.1.mlp.experts.4.down_proj" in rows[0]
    assert "high alpha: dead or under-trained expert?" in rows[0]
    assert "robust z-score" in experts and "3.5" in experts
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_svg_figures(llama, tmp_path):
    path = tmp_path / "r.html"
    write_report(llama, str(path), layer_figures="esd", figure_format="svg")
    page = path.read_text()
    assert "data:image/png" not in page
    svgs = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(svgs) == 4 + 2 + len(llama)  # overview, kind views, one ESD per layer
    for data in svgs:
        text = base64.b64decode(data).decode()
        assert "<svg" in text and "<script" not in text
    # the per-layer figure's legend is drawn in SVG (in PNG it is pasted pixels)
    esd = base64.b64decode(svgs[-1]).decode()
    assert 'id="legend_1"' in esd
    with pytest.raises(ValueError, match="figure_format"):
        build_report(llama, figure_format="jpg")


def run_chromium(page_path, tmp_path, width):
    probe = """<script>window.addEventListener("load", function () {
      var s = document.querySelector(".table-scroll");
      document.body.setAttribute("data-page-width", String(document.documentElement.scrollWidth));
      document.body.setAttribute("data-box", s.clientWidth + "/" + s.scrollWidth);
    });</script>"""
    page = page_path.read_text().replace("</body>", probe + "</body>", 1)
    probe_path = tmp_path / "probe.html"
    probe_path.write_text(page)
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},900",
           "--virtual-time-budget=5000", "--dump-dom", probe_path.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    return lambda name: re.search(fr'{name}="([^"]*)"', dom).group(1)


def test_details_table_scrolls_inside_a_1400_pixel_window(llama, tmp_path):
    if chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    wide = llama.assign(longname=[f"{n}.{'x' * 150}" for n in llama["longname"]])  # a table far wider than 1400 px
    path = tmp_path / "wide.html"
    write_report(wide, str(path), layer_figures="none")
    attr = run_chromium(path, tmp_path, 1400)
    assert int(attr("data-page-width")) <= 1400  # the page itself does not overflow the window
    client, scroll = map(int, attr("data-box").split("/"))
    assert client < 1400 < scroll  # the table scrolls inside its box


def test_cli_report_plots_writes_the_views(llama, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from htsr import cli

    rng = np.random.default_rng(3)
    state = {f"model.layers.{b}.mlp.{k}.weight": (rng.standard_t(3, (96, 48)) * 0.05).astype(np.float32)
             for b in range(3) for k in ("up_proj", "down_proj")}
    path = tmp_path / "m.safetensors"
    st.save_file(state, str(path))
    assert cli.main(["report", str(path), "-o", str(tmp_path / "r.html"), "--plots", str(tmp_path / "f")]) == 0
    views = sorted(n for n in os.listdir(tmp_path / "f") if n.startswith("htsr.views"))
    assert views == ["htsr.views.alpha_by_depth.png", "htsr.views.kinds.png"]
    figs = htsr.plots.view_figures(llama)
    assert set(figs) == {"kinds", "alpha_by_depth"}  # no experts in this model
