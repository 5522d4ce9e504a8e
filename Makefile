# Everything a newcomer needs: `make test` and `./start_system.sh` (README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
PYTEST_ARGS ?=

.PHONY: install install-dev model test test-fast lint format check-compose clean-data messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip setuptools wheel

# The stamps make a second run a no-op until pyproject.toml or constraints.txt change.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) ".[dev]"
	touch $(VENV)/.installed $@

# On a GPU host without the CUDA toolkit, also CUDA's libraries from PyPI (the gpu extra):
# only when nvidia-smi lists a GPU and they are missing, so a second run stays a no-op.
# The interface's translations are compiled here too (locale/*.po -> .mo, without GNU
# gettext: sttproject/catalogues.py); a no-op while every .mo is newer than its .po.
install: $(VENV)/.installed
	@$(BIN)/python -m workers.cuda_libs install
	@$(BIN)/python manage.py compile_catalogues

# axe-core (package.json, pinned in package-lock.json) for the browser tests' accessibility
# checks; npm's own record of the tree is the stamp, so a second run is a no-op.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

install-dev: $(VENV)/.installed-dev node_modules/.package-lock.json
	@$(BIN)/python manage.py compile_catalogues

# After marking or changing strings: refresh locale/ko's catalogues (needs GNU gettext's
# xgettext and msgmerge: apt-get install gettext), then translate the new entries; the
# translations test (tests/test_translations.py) lists what is missing.
MAKEMESSAGES := --add-location=file --no-obsolete --ignore=.venv --ignore=var --ignore=tests \
	--ignore=bench --ignore=docs --ignore=build --ignore=node_modules
messages: install-dev
	$(BIN)/python manage.py makemessages -l ko $(MAKEMESSAGES)
	$(BIN)/python manage.py makemessages -d djangojs -l ko $(MAKEMESSAGES)

model: install
	$(BIN)/python manage.py prepare_model

# Tests use the PostgreSQL and Redis in DATABASE_URL / REDIS_URL when set, else
# start the embedded ones for the run and stop them afterwards.
test: install-dev model
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything that needs no Whisper model, no started process and no browser: the lane to
# run while working (README, Tests). Slow tests load the model or start workers and servers.
test-fast: install-dev
	$(BIN)/python -m workers.embedded run -- \
		$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# compose.yml requires these secrets, compose.worker.yml the central URLs; placeholders are
# enough for an offline check.
check-compose:
	SECRET_KEY=$${SECRET_KEY:-check} POSTGRES_PASSWORD=$${POSTGRES_PASSWORD:-check} \
	FLOWER_BASIC_AUTH=$${FLOWER_BASIC_AUTH:-check:check} docker-compose -f compose.yml config -q
	DATABASE_URL=$${DATABASE_URL:-postgresql://check@db/check} REDIS_URL=$${REDIS_URL:-redis://redis/0} \
	STORAGE_URL=$${STORAGE_URL:-s3://check} WORKER_HOST=$${WORKER_HOST:-check} \
	docker-compose -f compose.worker.yml config -q

# Platform (upload -> done, real worker) vs plain faster-whisper on the evaluation clips;
# prints per-file and total CER and time ratios (bench/batch.py). BENCH_ARGS="--repeat 3".
bench-batch: install-dev model
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m bench.batch $(BENCH_ARGS)

bench-keywords: install-dev
	$(BIN)/python -m bench.keywords

# Dev clips streamed through /ws at real-time pace by 1, 2 and 4 clients: CER, latency,
# overhead over plain faster-whisper, backlog, no-speech words (bench/live.py); then one
# client again with eight 2-minute uploads queued: final latency p95 against level 1's
# (live first, issue 12; BENCH_ARGS="--uploads 0" skips it).
# BENCH_ARGS="--levels 1 --rounds 3" streams one client three times and pools the finals.
bench-live: install-dev model
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m bench.live $(BENCH_ARGS)

# Search latency over 10,000 transcripts / 200,000 Korean segments in a database of its own
# (stt_bench_search, filled once and reused; BENCH_ARGS="--refill" rebuilds it) (bench/search.py).
bench-search: install-dev
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m bench.search $(BENCH_ARGS)

# Whole, readable text (issue 14): every eval clip and the long bench files through the
# pipeline in-process and plain faster-whisper with word timestamps; words, where the text
# ends, similarity, CER against bench/baselines/, sentences, pauses spanned, word timings,
# SRT cues (bench/readability.py). BENCH_ARGS="--only jfk,long" runs some files.
bench-readability: install-dev model
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m bench.readability $(BENCH_ARGS)

# How cost grows (issue 16): wall time and peak RSS of web and workers with 1, 2, 4, 8
# concurrent 2-minute uploads, 1, 2, 4 live streams and search over 10k, 100k, 1M segments,
# each figure with its ratio to the previous step (bench/scale.py; under an hour on 2 cores).
# BENCH_ARGS="--quick" is a smoke run; BENCH_ARGS="--only search" runs one dimension.
bench-scale: install-dev model
	$(BIN)/python -m workers.embedded run -- $(BIN)/python -m bench.scale $(BENCH_ARGS)
