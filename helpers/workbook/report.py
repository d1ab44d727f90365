"""The workbook's report: one offline HTML page per executed notebook, an index, and one PDF of the whole.

    python -m helpers.report                      # render the notebooks as they are (the committed, full-mode ones)
    python -m helpers.report --from reports/executed   # render executed copies (what `python -m helpers.notebooks` wrote)

Pages load MathJax 2, RequireJS and the ipywidgets HTML manager from reports/_static (copied from
tools/report/node_modules, which `make report-assets` installs with npm from its lock file), so formulas typeset and
saved widget states render with no network. GIF outputs, which nbconvert's HTML export drops, become an animated image
on screen and a strip of frames in print. The PDF is printed from the same pages by headless Chromium and merged with
pypdf, one bookmark per notebook.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.paths import ROOT, notebook_paths
from helpers.cli import ArgumentParser

ASSETS = ROOT / "tools" / "report" / "node_modules"
# What the pages need, relative to ASSETS (MathJax without its unpacked sources, tests and non-woff fonts).
ASSET_DIRS = {"mathjax": "mathjax", "requirejs": "requirejs", "html-manager": "@jupyter-widgets/html-manager/dist"}
MATHJAX_SKIP = ("unpacked", "test", "docs", "*.md", "eot", "otf", "svg")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--allow-file-access-from-files"]
EXTRA_CSS = """
<style type="text/css">
/* Long lines wrap instead of being clipped, on screen and in print. */
.jp-InputArea-editor pre, .jp-OutputArea-output pre, .highlight pre { white-space: pre-wrap; word-break: break-word; }
.jp-InputArea, .jp-InputArea-editor { overflow: visible; }
.wb-strip { display: none; max-width: 100%; }
/* Wide tables (pandas' many columns): headers wrap anywhere, numbers stay whole, and in print the type shrinks so
   that the table fits the page rather than losing its last columns. */
.jp-RenderedHTMLCommon table { max-width: 100%; }
.jp-RenderedHTMLCommon th { white-space: normal; overflow-wrap: anywhere; }
@media print {
  .jp-RenderedHTMLCommon table { font-size: 7px; }
  .jp-RenderedHTMLCommon th, .jp-RenderedHTMLCommon td { padding: 1px 2px; }
  .jp-OutputArea-output { overflow: visible; }
}
.wb-run { font: 12px sans-serif; color: #555; border-bottom: 1px solid #ddd; padding: 4px 0; margin-bottom: 8px; }
.wb-failed { color: #b00; font-weight: bold; }
</style>
"""


def title_of(nb) -> str:
    """The notebook's own title: the first Markdown heading of its first cells."""
    for cell in nb.cells[:3]:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "Notebook"


def question_of(nb) -> str:
    """The paragraph that opens with **Question.** (or **Questions.**, or **Question** (its source).) in the first
    cell, as plain text; a source in brackets goes to the end: "Does it work? (the course's problem set)". Without
    one, the first paragraph after the title (the write-up's summary)."""
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    m = re.search(r"\*\*Questions?(?:\.\*\*|\*\*\s*(\([^)]*\))\.)\s*(.+?)(?:\n\s*\n|$)", first, re.S)
    if not m:
        paragraphs = [p for p in re.split(r"\n\s*\n", first) if p.strip() and not p.lstrip().startswith("#")]
        return re.sub(r"\s+", " ", paragraphs[0].replace("**", "")).strip() if paragraphs else ""
    text = re.sub(r"\s+", " ", m.group(2)).strip()
    return f"{text} {m.group(1)}" if m.group(1) else text


def gif_strip(gif: bytes, frames: int = 6) -> bytes:
    """A PNG of `frames` frames of a GIF side by side (the first, the last and evenly between), for print."""
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(gif)) as im:
        all_frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
    pick = sorted({round(i * (len(all_frames) - 1) / max(1, frames - 1)) for i in range(frames)})
    chosen = [all_frames[i] for i in pick]
    w, h = chosen[0].size
    strip = Image.new("RGB", (len(chosen) * (w + 4) - 4, h), "white")
    for k, frame in enumerate(chosen):
        strip.paste(frame, (k * (w + 4), 0))
    out = io.BytesIO()
    strip.save(out, format="PNG")
    return out.getvalue()


def gifs_to_html(nb) -> int:
    """Give every image/gif output an HTML form (animated on screen, a frame strip in print); returns how many."""
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/gif" in data:
                gif = data["image/gif"]
                gif = "".join(gif) if isinstance(gif, list) else gif
                strip = base64.b64encode(gif_strip(base64.b64decode(gif))).decode()
                data["text/html"] = (f'<img class="wb-gif" src="data:image/gif;base64,{gif.strip()}"/>'
                                     f'<img class="wb-strip" src="data:image/png;base64,{strip}"/>')
                data.pop("text/plain", None)
                count += 1
    return count


def copy_assets(out: Path) -> list[str]:
    """Copy the offline assets into out/_static; returns the names of those missing (the pages then fall back to
    the public CDNs, and the report says so)."""
    missing = []
    for name, rel in ASSET_DIRS.items():
        src, dst = ASSETS / rel, out / "_static" / name
        if not src.is_dir():
            missing.append(name)
            continue
        if not dst.exists():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*MATHJAX_SKIP) if name == "mathjax" else None)
    return missing


def exporter(missing: list[str]):
    from nbconvert import HTMLExporter

    e = HTMLExporter(template_name="lab")
    if "mathjax" not in missing:
        e.mathjax_url = "_static/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    if "requirejs" not in missing:
        e.require_js_url = "_static/requirejs/require.js"
    if "html-manager" not in missing:
        e.widget_renderer_url = "_static/html-manager/embed-amd.js"
    return e


def run_banner(meta: dict) -> str:
    """One line under each page's title: the profile, seed, commit, wall time, versions (and a failure, if any)."""
    if not meta:
        return '<div class="wb-run">not executed by helpers.workbook.notebooks (no run record in its metadata)</div>'
    parts = [f"profile {meta.get('mode')}", f"seed {meta.get('seed')}", f"commit {meta.get('commit', '?')}",
             f"{meta.get('seconds', '?')} s", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())]
    failed = meta.get("error")
    extra = f' <span class="wb-failed">FAILED in cell {failed["cell"]}: {html.escape(failed["error"])}</span>' if failed else ""
    return f'<div class="wb-run">{html.escape(" · ".join(str(p) for p in parts))}{extra}</div>'


def export_page(path: Path, out: Path, missing: list[str]) -> dict:
    """Write out/<name>.html for one notebook; returns its entry for the index."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    title, meta = title_of(nb), nb.metadata.get("workbook", {})
    gifs_to_html(nb)
    body, _ = exporter(missing).from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = body.replace("</head>", EXTRA_CSS + "</head>", 1)
    body = re.sub(r"(<main[^>]*>)", lambda m: m.group(1) + run_banner(meta), body, count=1)
    page = out / path.with_suffix(".html").name
    page.write_text(body)
    return {"page": page.name, "title": title, "question": question_of(nb), "run": meta}


MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


def write_index(out: Path, entries: list[dict], missing: list[str]) -> Path:
    """out/index.html: each notebook's title, its question (its Markdown and maths rendered, as on its page) and its
    run."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    mathjax = MATHJAX_CDN if "mathjax" in missing else "_static/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    rows = []
    for e in entries:
        run = e["run"]
        status = (f'<span class="wb-failed">failed (cell {run["error"]["cell"]})</span>' if run.get("error")
                  else f"{run['mode']}, {run['seconds']} s" if run else "as committed")
        rows.append(f'<tr><td><a href="{e["page"]}">{html.escape(e["title"])}</a></td>'
                    f'<td>{markdown2html_mistune(e["question"])}</td><td>{status}</td></tr>')
    note = (f"<p class='wb-failed'>Offline assets missing ({', '.join(missing)}): these pages load them from public "
            "CDNs. Run <code>make report-assets</code>.</p>" if missing else "")
    page = out / "index.html"
    page.write_text(f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>The diffusion workbook</title>
<style>body{{font:15px/1.45 sans-serif;max-width:60em;margin:2em auto}}td{{vertical-align:top;padding:6px;border-bottom:1px solid #ddd}}
td p{{margin:0}}.wb-failed{{color:#b00}}</style>
<script type="text/x-mathjax-config">MathJax.Hub.Config({{tex2jax: {{inlineMath: [["$", "$"]], processEscapes: true}}}});</script>
<script src="{mathjax}"></script></head><body><h1>The diffusion workbook</h1>{note}
<p>One page per notebook; <a href="workbook.pdf">the whole as one PDF</a>.</p>
<table><tr><th>notebook</th><th>question</th><th>run</th></tr>{''.join(rows)}</table></body></html>
""")
    return page


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(pages: list[Path], titles: list[str], pdf: Path, wait_ms: int = 20000) -> Path:
    """Print each page with headless Chromium (after `wait_ms` of virtual time, so MathJax has typeset) and merge
    the PDFs with pypdf, one bookmark per page."""
    from pypdf import PdfWriter

    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium for the PDF: install Debian's `chromium` (apt install chromium) or put "
                                "chromium or google-chrome on PATH; the HTML pages are written without it")
    writer = PdfWriter()
    for page, title in zip(pages, titles):
        part = page.with_suffix(".pdf")
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={pdf.parent / '.chromium'}", "--no-pdf-header-footer",
                        f"--virtual-time-budget={wait_ms}", f"--print-to-pdf={part}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=300)
        start = len(writer.pages)
        writer.append(str(part))
        writer.add_outline_item(title=title, page_number=start)
        part.unlink()
    with pdf.open("wb") as f:
        writer.write(f)
    shutil.rmtree(pdf.parent / ".chromium", ignore_errors=True)
    return pdf


def build(notebooks: list[Path], out: Path, pdf: bool = True) -> dict:
    """The whole report in `out`: assets, one page per notebook, the index and (with Chromium) the PDF."""
    out.mkdir(parents=True, exist_ok=True)
    missing = copy_assets(out)
    entries = [export_page(p, out, missing) for p in notebooks]
    index = write_index(out, entries, missing)
    result = {"index": index, "pages": [out / e["page"] for e in entries], "missing_assets": missing, "pdf": None}
    if pdf:
        result["pdf"] = print_pdf([index] + result["pages"], ["Index"] + [e["title"] for e in entries],
                                  out / "workbook.pdf")
    return result


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.report", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="substrings of notebook names (default: all)")
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="a folder of executed notebooks (default: notebooks/, the committed ones)")
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    p.add_argument("--no-pdf", dest="pdf", action="store_false")
    args = p.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file; give a folder for the report")
    try:
        paths = notebook_paths(args.names)
        if args.source is not None:
            paths = [args.source / path.name for path in paths]
            absent = [str(path) for path in paths if not path.exists()]
            if absent:
                raise FileNotFoundError(f"--from {args.source}: no executed copy of {', '.join(absent)}")
        result = build(paths, args.out, pdf=args.pdf)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result["missing_assets"]:
        print(f"warning: offline assets missing ({', '.join(result['missing_assets'])}): the pages use public CDNs; "
              "run `make report-assets`", file=sys.stderr)
    print(f"report: {result['index']} ({len(result['pages'])} pages)" + (f", {result['pdf']}" if result["pdf"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
