"""The HTML report: self-contained, escaped, warnings first; and in a real headless browser (chromium)."""
import base64
import html
import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from htsr.report import write_report  # noqa: E402

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A model whose first layer is named <script>alert(1)</script>, with a failing and a Gaussian layer."""
    rng = np.random.default_rng(11)
    model = {
        f"{XSS}.weight": (rng.standard_t(2.2, size=(100, 200)) * 0.05).astype(np.float32),
        "enc.\"quoted\" & <b>bold</b>.weight": (rng.standard_t(3, size=(80, 160)) * 0.05).astype(np.float32),
        "enc.gauss.weight": rng.standard_normal((90, 300)).astype(np.float32),
        "enc.nan.weight": np.full((40, 60), np.nan, np.float32),
        "enc.heavy.weight": (rng.standard_t(2.5, size=(70, 140)) * 0.05).astype(np.float32),
    }
    path = tmp_path_factory.mktemp("report") / "report.html"
    details = write_report(model, str(path), title="test <report>")
    return path, details


def rows_of(page):
    body = page.split('<table id="details-table">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"([a-z]*)\">(.*?)</tr>", body, flags=re.S)


def test_self_contained(report):
    path, _ = report
    page = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) >= 4 + 4  # 4 overview figures + one log-log ESD per analyzed layer
    for data in imgs[:3]:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_model_string_is_escaped(report):
    path, _ = report
    page = path.read_text()
    assert XSS not in page
    assert html.escape(XSS) in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "&quot;quoted&quot; &amp;" in page
    assert page.count("<script>") == 1  # only the page's own sorting script
    assert "<title>test &lt;report&gt;</title>" in page


def test_warnings_first(report):
    path, details = report
    page = path.read_text()
    assert page.index('id="warnings"') < page.index('id="summary"') < page.index('id="details"')
    classes = [c for c, _ in rows_of(page)]
    assert len(classes) == len(details) == 5
    assert classes[0] == "failed"
    ok = details[details["status"] != "failed"]
    n_warn = int((ok["warning"].fillna("") != "").sum())
    assert 0 < n_warn < len(ok)
    assert classes[1:1 + n_warn] == ["warn"] * n_warn
    assert all(c == "" for c in classes[1 + n_warn:])
    assert "enc.nan" in page.split('id="summary"')[0]  # the failure is listed in the warnings block


# ---- headless browser ----

def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


PROBE = """<script>
window.alert = function () { document.documentElement.setAttribute("data-alerted", "1"); };
</script>"""
CLICK = """<script>
(function () {
  var t = document.getElementById("details-table");
  var ths = t.tHead.rows[0].cells, col = -1;
  for (var i = 0; i < ths.length; i++) if (ths[i].textContent === "alpha") col = i;
  function values() {
    return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[col].getAttribute("data-value"); })
      .join(",");
  }
  document.body.setAttribute("data-before", values());
  ths[col].click();
  document.body.setAttribute("data-asc", values());
  ths[col].click();
  document.body.setAttribute("data-desc", values());
  var texts = Array.prototype.filter.call(document.querySelectorAll("td"), function (td) {
    return td.textContent === "<script>alert(1)<\\/script>"; });
  document.body.setAttribute("data-xss-cells", String(texts.length));
  document.body.setAttribute("data-scripts", String(document.scripts.length));
  window.addEventListener("load", function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth === 640) ok++;
    document.body.setAttribute("data-images", ok + "/" + imgs.length);
  });
})();
</script>"""


def test_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    path, details = report
    page = path.read_text()
    page = page.replace("<head>", "<head>" + PROBE, 1).replace("</body>", CLICK + "</body>", 1)
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = result.stdout
    assert "<body" in dom, result.stderr[-2000:]

    def attr(name):
        return re.search(fr'{name}="([^"]*)"', dom).group(1)

    # the page rendered: the table is there and every embedded image decoded
    assert 'id="details-table"' in dom
    ok, total = attr("data-images").split("/")
    assert int(total) >= 8 and ok == total
    # the layer named <script>alert(1)</script> is text in a cell, not a script
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-alerted" not in html_tag
    assert attr("data-xss-cells") == "1"
    assert attr("data-scripts") == "3"  # the page's own + the two probes
    # clicking the alpha header sorts the rows ascending, clicking again descending

    def parse(s):
        return [float(v) for v in s.split(",")]

    before, asc, desc = parse(attr("data-before")), parse(attr("data-asc")), parse(attr("data-desc"))
    expected = sorted(details["alpha"].astype(float))
    assert before != expected  # warnings first: not already sorted
    np.testing.assert_allclose(asc, expected, rtol=1e-12)
    np.testing.assert_allclose(desc, expected[::-1], rtol=1e-12)


def test_screenshot_is_not_blank(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    path, _ = report
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1200,900", f"--screenshot={shot}", path.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=90)
    assert shot.exists()
    grey = np.asarray(Image.open(shot).convert("L"))
    assert grey.shape == (900, 1200)
    assert (grey < 128).mean() > 0.005  # text and figures, not a blank page
