"""The HTML skeleton of `htsr report`: one self-contained page (inline CSS and JS, images as data: URIs).

Placeholders are filled with already-escaped HTML (html.py, compare.py); the script only reorders existing
table rows (it never writes model strings into the page), and the Content-Security-Policy forbids any network
access and any script but this inline one. Wide tables scroll inside their own box, so the page never gets
wider than the window."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; overflow-wrap: anywhere; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
p, li {{ overflow-wrap: anywhere; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }}
td.text, th.text {{ text-align: left; }}
th {{ background: #f0f0f0; cursor: pointer; user-select: none; position: sticky; top: 0; }}
th[aria-sort="ascending"]::after {{ content: " \\25B2"; }}
th[aria-sort="descending"]::after {{ content: " \\25BC"; }}
tr.warn td {{ background: #fff4e0; }} tr.failed td {{ background: #fde4e4; }}
tr.changed td {{ background: #e8f0ff; }} tr.missing td {{ background: #eeeeee; }}
.table-scroll {{ max-width: 100%; max-height: 80vh; overflow: auto; border: 1px solid #ddd; }}
.warnings {{ border: 1px solid #e0a040; background: #fff8ec; padding: 0.6em 1em; }}
.ok {{ border: 1px solid #7c7; background: #f0fff0; padding: 0.6em 1em; }}
.figure-note {{ color: #8a4b00; font-style: italic; }}
.summary td:first-child {{ text-align: left; }}
.figs img {{ max-width: 48%; margin: 0.3em; border: 1px solid #ddd; vertical-align: top; }}
.figs.wide img {{ max-width: 98%; }}
details {{ margin: 0.3em 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{subtitle}</p>
{body}
<script>
(function () {{
  function key(cell, numeric) {{
    var v = cell.getAttribute("data-value");
    if (v === null) v = cell.textContent;
    if (numeric) {{ var x = parseFloat(v); return isNaN(x) ? -Infinity : x; }}
    return v.toLowerCase();
  }}
  function sortable(table) {{
    var headers = table.tHead.rows[0].cells;
    function sortBy(index) {{
      var th = headers[index];
      var numeric = th.getAttribute("data-type") === "number";
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      for (var i = 0; i < headers.length; i++) headers[i].removeAttribute("aria-sort");
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {{
        var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
        return x < y ? -dir : x > y ? dir : 0;
      }});
      rows.forEach(function (r) {{ body.appendChild(r); }});
    }}
    for (var i = 0; i < headers.length; i++) {{
      (function (i) {{ headers[i].addEventListener("click", function () {{ sortBy(i); }}); }})(i);
    }}
  }}
  var tables = document.querySelectorAll("table");
  for (var t = 0; t < tables.length; t++) if (tables[t].tHead) sortable(tables[t]);
}})();
</script>
</body>
</html>
"""


def section(anchor: str, heading: str, content: str) -> str:
    """One titled part of the page; `heading` and `content` are HTML already escaped."""
    return f'<h2 id="{anchor}">{heading}</h2>\n{content}\n'


def scrolling(table_html: str) -> str:
    """A wide table in its own scroll box (sticky headers stay on top while it scrolls)."""
    return f'<div class="table-scroll">{table_html}</div>'
