"""The report (helpers.workbook.report, helpers.workbook.notebooks): titles, questions, GIFs, failures recorded, and the pages checked
in a real browser (headless Chromium through Selenium): formulas typeset, images loaded, a saved widget rendered, and
a PDF whose pages are not blank."""
import base64
import io
import json
import shutil
import subprocess

import nbformat
import numpy as np
import pytest
from PIL import Image

from helpers.workbook import report
from helpers.workbook.notebooks import execute
from helpers.paths import notebook_paths

BROWSER = shutil.which("chromium") and shutil.which("chromedriver")


def tiny_gif(frames=5) -> str:
    images = [Image.fromarray(np.full((8, 8), 40 * k, np.uint8)) for k in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return base64.b64encode(out.getvalue()).decode()


def test_title_question_and_gif():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 07 · A title\n\n**Question.** Does it\nwork?\n\nMore text."),
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("display_data", data={
            "image/gif": tiny_gif(), "text/plain": "<IPython.core.display.Image object>"})])])
    assert report.title_of(nb) == "07 · A title"
    assert report.question_of(nb) == "Does it work?"
    sourced = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        '# 10 · T\n\n**Question** (the DiT problem set). How do "steps"\nmatter?\n\nMore.')])
    assert report.question_of(sourced) == 'How do "steps" matter? (the DiT problem set)'
    summary = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Write-up\n\n**Team write-up** of\nthe rest.\n\nMore.")])
    assert report.question_of(summary) == "Team write-up of the rest."
    assert report.gifs_to_html(nb) == 1
    data = nb.cells[1].outputs[0]["data"]
    assert "text/plain" not in data and 'class="wb-gif"' in data["text/html"] and 'class="wb-strip"' in data["text/html"]
    strip = Image.open(io.BytesIO(report.gif_strip(base64.b64decode(tiny_gif()), frames=3)))
    assert strip.size == (3 * 8 + 2 * 4, 8)  # three frames, 4-pixel gaps


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_notebook_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, capsys, jobs):
    """Two notebooks, the first failing in its second code cell: both are executed, the failure is in the run record
    and the exit status is 1; the summary names the slowest cell. With --jobs 2 the two run at once, each in its own
    process (make run), with the same records."""
    from helpers.workbook import notebooks

    for name, code in (("01_fails.ipynb", ["SEED = 3", "1 / 0"]), ("02_works.ipynb", ["SEED = 4", "import time; time.sleep(1.5)"])):
        cells = [nbformat.v4.new_code_cell(code[0], metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(code[1])]
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}),
                       str(tmp_path / name))
    monkeypatch.setattr(notebooks, "notebook_paths", lambda names=None: sorted(tmp_path.glob("0*.ipynb")))
    out = tmp_path / "executed"
    assert notebooks.main(["--mode", "quick", "--out", str(out), "--jobs", str(jobs)]) == 1
    assert "the longest cell: 02_works.ipynb code cell 2, " in capsys.readouterr().out  # the 1.5 s sleep
    failed = json.loads((out / "01_fails.ipynb").read_text())["metadata"]["workbook"]
    assert failed["error"] == {"cell": 2, "error": "ZeroDivisionError: division by zero"} and failed["seed"] == 3
    ok = json.loads((out / "02_works.ipynb").read_text())["metadata"]["workbook"]
    assert "error" not in ok and ok["mode"] == "quick" and ok["seed"] == 4 and "torch" in ok["versions"]


def test_jobs_run_notebooks_at_once_and_say_where_each_is(tmp_path, monkeypatch, capsys):
    """--jobs 2 (make run): two notebooks of one 6-second cell each run at the same time (one status block names
    both, each with its code cells done and seconds), and both end ok."""
    import re

    from helpers.workbook import notebooks

    for name in ("01_a.ipynb", "02_b.ipynb"):
        cells = [nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
                 nbformat.v4.new_code_cell("import time; time.sleep(6)")]
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}),
                       str(tmp_path / name))
    monkeypatch.setattr(notebooks, "notebook_paths", lambda names=None: sorted(tmp_path.glob("0*.ipynb")))
    monkeypatch.setattr(notebooks, "STATUS_EVERY", 1)
    assert notebooks.main(["--mode", "quick", "--out", str(tmp_path / "executed"), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"running 01_a: 1 of 2 code cells, \d+ s\n  running 02_b: 1 of 2 code cells, \d+ s", captured.err)
    assert captured.out.count(" ok in ") == 2


def test_the_runner_refuses_an_out_that_is_a_file_in_one_line(tmp_path, capsys):
    from helpers.workbook import notebooks

    afile = tmp_path / "executed.ipynb"
    afile.write_text("{}")
    with pytest.raises(SystemExit) as e:
        notebooks.main(["--out", str(afile)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err == [f"error: --out {afile}: expected a folder for the executed copies, but it is a file"]


@pytest.mark.skipif(not BROWSER, reason="needs Debian's chromium and chromium-driver (make setup installs them)")
def test_pages_render_offline_in_a_browser(tmp_path):
    """Notebook 01 (formulas, images and a saved ipywidgets state), 05 and 12 (GIFs, wide tables), rendered and opened in headless
    Chromium with the network off: MathJax typeset every formula, every image loaded, the widget drew its slider; the
    PDF's pages, turned into PNGs by pdftoppm, are not blank."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    pages = [p for p in notebook_paths() if p.name.startswith(("01_", "05_", "12_"))]  # 12: the widest tables
    result = report.build(pages, tmp_path, pdf=True)
    assert not result["missing_assets"], "run `make report-assets` (npm ci in tools/report)"
    options = webdriver.ChromeOptions()
    for flag in report.CHROMIUM_FLAGS + ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]:
        options.add_argument(flag)  # no network: any request for a CDN would fail
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        for page in result["pages"]:
            driver.get(page.as_uri())
            state = driver.execute_async_script("""
                const done = arguments[0];
                const check = () => {
                  const mj = window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0
                             && MathJax.Hub.queue.running === 0 && document.querySelectorAll('.mjx-chtml').length > 0;
                  const imgs = Array.from(document.images);
                  if (mj && imgs.every(i => i.complete)) {
                    done({math: document.querySelectorAll('.mjx-chtml').length,
                          raw: (document.body.innerText.match(/\\$\\$/g) || []).length,
                          images: imgs.length, broken: imgs.filter(i => i.naturalWidth === 0 && !i.classList.contains('wb-strip')).length,
                          widgets: document.querySelectorAll('.widget-slider, .widget-hslider, .jupyter-widgets .widget-inline-hbox').length});
                  } else { setTimeout(check, 250); }
                };
                check();""")
            print(page.name, state)
            assert state["math"] >= 5 and state["raw"] == 0, (page.name, state)  # 01: 152 formulas, 05: 85, 12: 5
            assert state["images"] > 3 and state["broken"] == 0, (page.name, state)
            if page.name.startswith("01_"):
                assert state["widgets"] >= 1, (page.name, state)
        # In print, no table runs past its page's content width: Chromium's PDF would cut its last columns without a
        # trace in the PDF's text (Skia drops what is clipped), so the check is made here, on the print layout.
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        driver.set_window_size(800, 1100)  # about A4's printable width at 96 dpi
        for page in result["pages"]:
            driver.get(page.as_uri())
            wide = driver.execute_script("""
                const main = document.querySelector('main') || document.body;
                const right = main.getBoundingClientRect().right + 1;
                return Array.from(document.querySelectorAll('table')).filter(t => t.getBoundingClientRect().right > right).length;""")
            assert wide == 0, f"{page.name}: {wide} tables wider than the printed page"
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        # The index renders each question's Markdown and maths (no raw $ or *).
        driver.get(result["index"].as_uri())
        state = driver.execute_async_script("""
            const done = arguments[0];
            const check = () => {
              if (window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0
                  && MathJax.Hub.queue.running === 0) {
                done({math: document.querySelectorAll('.mjx-chtml').length,
                      raw: (document.body.innerText.match(/[$*]/g) || []).length});
              } else { setTimeout(check, 250); }
            };
            check();""")
        # exactly the questions' $...$ pairs are typeset (a parenthesis is text, not maths)
        pairs = sum(report.question_of(nbformat.read(str(p), as_version=4)).count("$") // 2 for p in pages)
        assert state["math"] == pairs >= 1 and state["raw"] == 0, (state, pairs)
    finally:
        driver.quit()
    png = tmp_path / "png"
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(result["pdf"]), str(png)], check=True)
    shots = sorted(tmp_path.glob("png-*.png"))
    assert len(shots) >= 5
    for shot in shots:
        assert np.asarray(Image.open(shot).convert("L")).std() > 5, f"{shot.name} is blank"

