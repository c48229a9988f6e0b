# cartwise — the README's two commands are `make demo` and `make test`; each sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BQ_VENV := .local/venvs/bigquery
WF_VENV := .local/venvs/workflows
PY := $(VENV)/bin/python
PIP_QUIET ?= --quiet --disable-pip-version-check

.PHONY: setup prerequisites up down status test lint typecheck unit tracker-test demo clean

setup: prerequisites $(VENV)/.installed $(BQ_VENV)/.installed $(WF_VENV)/.installed tracker/node_modules/.installed \
	tests/browser/node_modules/.installed

prerequisites:
	@emulators/check_prerequisites.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setup: project virtualenv $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_QUIET) --upgrade "pip>=24"
	@$(PY) -m pip install $(PIP_QUIET) -c constraints.txt -e '.[dev,infra]'
	@touch $@

$(BQ_VENV)/.installed: emulators/bigquery/requirements.txt
	@echo "setup: BigQuery emulator (bqemulator) in its own virtualenv $(BQ_VENV)"
	@test -x $(BQ_VENV)/bin/python || $(PYTHON) -m venv $(BQ_VENV)
	@$(BQ_VENV)/bin/python -m pip install $(PIP_QUIET) -r emulators/bigquery/requirements.txt
	@touch $@

$(WF_VENV)/.installed: emulators/workflows/requirements.txt
	@echo "setup: Workflows emulator in its own virtualenv $(WF_VENV)"
	@test -x $(WF_VENV)/bin/python || $(PYTHON) -m venv $(WF_VENV)
	@$(WF_VENV)/bin/python -m pip install $(PIP_QUIET) -r emulators/workflows/requirements.txt
	@touch $@

# The tracker's one dev dependency (esbuild, pinned in package-lock.json) builds dist/; its
# unit tests need nothing installed (node --test on src/).
tracker/node_modules/.installed: tracker/package.json tracker/package-lock.json
	@echo "setup: the tracker's build tool (npm ci in tracker/)"
	@cd tracker && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests' tooling: axe-core (pinned in tests/browser/package-lock.json), injected
# into headless Chromium by tests/integration/accessibility.py for accessibility scans.
tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	@echo "setup: the browser tests' axe-core (npm ci in tests/browser/)"
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

up: setup
	@$(PY) -m emulators.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m emulators.stack down; else echo "nothing to stop"; fi

status:
	@$(PY) -m emulators.stack status

lint: setup
	@echo "lint: ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: setup
	@echo "types: mypy"
	@$(VENV)/bin/mypy shared emulators tests infra/pulumi/cartwise_infra infra/pulumi/__main__.py $(wildcard functions bench)

# Unit tests need nothing: they run in their own session with no emulator variable set.
NO_EMULATORS := env -u PUBSUB_EMULATOR_HOST -u BIGTABLE_EMULATOR_HOST -u FIRESTORE_EMULATOR_HOST \
	-u BIGQUERY_EMULATOR_HOST -u STORAGE_EMULATOR_HOST -u WORKFLOWS_EMULATOR_URL

unit: setup
	@echo "tests: unit (pure logic, no emulator variable set)"
	@$(NO_EMULATORS) $(VENV)/bin/pytest tests/unit -q

# The JavaScript tracker: Node's own test runner, and dist/ checked against a fresh build.
tracker-test: setup
	@echo "tests: tracker (node --test)"
	@cd tracker && set -o pipefail && npm test --silent 2>&1 | tail -9

# The integration run starts the stack it needs (or reuses a healthy one) and stops what
# it started.
test: setup lint typecheck unit tracker-test
	@echo "tests: integration (on the local emulators)"
	@$(VENV)/bin/pytest tests/integration -q --durations=10

demo: up
	@$(PY) -m shared.cli demo

# The deployment plan of a stack (STACK=prod by default, or dev), for review: the Pulumi
# program under mocks, every resource with its type, parent and dependencies, in creation
# waves, and the dependency rules' verdict (docs/DEPLOY.md). No cloud access.
.PHONY: plan
plan: setup
	@cd infra/pulumi && ../../$(PY) -m cartwise_infra.plan --stack $(or $(STACK),prod)

clean: down
	rm -rf .local $(VENV)

# Ingest throughput: the endpoint (gunicorn, as Cloud Run serves it) against the bare-client
# ceiling, measured in the same run; see bench/README.md for options (python -m bench.ingest).
.PHONY: bench-ingest
bench-ingest: up
	@$(PY) -m bench.ingest

# The cold path: the freezer's append rate (its own topic and worker), the compaction's
# rate, freshness, the bare client's append ceilings (alone, and beside the compaction),
# the CPU each process used, and a compaction's cost against the read model's size, in one
# run (python -m bench.freeze --help).
.PHONY: bench-freeze
bench-freeze: up
	@$(PY) -m bench.freeze --events 100000 --json .local/bench/freeze.json

# Decision latency, ingest acknowledgement -> experience readable from the endpoint, on
# Complete Journey sessions at 200 and 1,000 events/s (python -m bench.decide --help).
.PHONY: bench-decide
bench-decide: up
	@$(PY) -m bench.decide --json .local/bench/decide.json

# Campaign changes live: "activated -> first shown" and "paused -> last shown", p95 over 20
# trials, beside the event -> experience floor (python -m bench.live_campaigns --help).
# The CSM's pages with 1,000 campaigns: portfolio and list p95 (python -m bench.back_office
# --help); writes its table in docs/BENCHMARKS.md.
.PHONY: bench-back-office
bench-back-office: up
	@$(PY) -m bench.back_office --json .local/bench/back_office.json --docs

.PHONY: bench-live-campaigns
bench-live-campaigns: up
	@$(PY) -m bench.live_campaigns --json .local/bench/live_campaigns.json

# The tracker in headless Chromium: track() -> experience rendered, p50/p95/p99 over 300
# events while the stack absorbs 100 events/s of replay (python -m bench.tracker --help).
.PHONY: bench-tracker
bench-tracker: up
	@$(PY) -m bench.tracker --json .local/bench/tracker.json

# Rewards game: concurrent POST /v1/plays, plays/s and latency, the budget held under
# contention (python -m bench.rewards --help; docs/REWARDS.md).
.PHONY: bench-rewards
bench-rewards: up
	@$(PY) -m bench.rewards --json .local/bench/rewards.json

# How the new-item recommender's settings were chosen: a grid over three validation
# boundaries, then the chosen one on the evaluation boundary (docs/MODEL.md). No stack:
# the data set's files only (~5 min).
.PHONY: bench-new-items
bench-new-items: setup
	@$(PY) -m bench.new_items_grid --json .local/bench/new_items_grid.json

# Does the campaign report's uplift recover a known effect? 200 seeded trials with shoppers
# who respond and 200 without (A/A), then 40 bigger ones: coverage, detection, bias. No
# stack: pure logic (~15 min on 2 cores; docs/BENCHMARKS.md).
.PHONY: bench-uplift
bench-uplift: setup
	@$(PY) -m bench.uplift --json .local/bench/uplift.json

# The learnt offer policy against the uniform policy and today's rules, where the truth is
# known (pure logic, ~2 min): writes its table into docs/MODEL.md and docs/policy.png.
.PHONY: bench-policy
bench-policy: setup
	@$(PY) -m bench.policy --seeds 10 --json .local/bench/policy.json

# One shopper's erasure among the full Complete Journey history (load it first:
# `cartwise backfill --weeks 1-53`, ~6 min): request -> every store done (docs/PRIVACY.md).
.PHONY: bench-erasure
bench-erasure: up
	@$(PY) -m bench.erasure --json .local/bench/erasure.json

# The retention purge: time and rows read, 1x and 4x old data with 1x and 4x kept, against
# the old whole-table scan in the same run (python -m bench.purge --help; docs/PRIVACY.md).
.PHONY: bench-purge
bench-purge: up
	@$(PY) -m bench.purge --json .local/bench/purge.json

# The nightly at scale: synthetic populations resampled from the Complete Journey (load it
# first: `cartwise backfill --weeks 1-53`), the whole nightly at each size with 1, 2 and 4
# shard tasks; wall time, rows, peak memory per task, a calibration beside each shard job;
# chart docs/nightly_scale.png
# (python -m bench.nightly_scale --help; docs/NIGHTLY.md). SIZES="10000 100000" TASKS="1 2 4"
# by default: about 1.5 hours here (100,000 shoppers: 23-29 min a run, ~10 GB of disk).
# 200,000 shoppers need a stack started with CARTWISE_BIGQUERY_MEMORY_LIMIT=14GiB and 2 or
# more tasks (one task's shard does not fit the emulator; docs/NIGHTLY.md).
.PHONY: bench-nightly-scale
bench-nightly-scale: up
	@$(PY) -m bench.nightly_scale --sizes $(or $(SIZES),10000 100000) --tasks $(or $(TASKS),1 2 4)

# The ranker trained on every shopper vs hash samples, on the same evaluation (after
# `cartwise backfill --weeks 1-53`; docs/MODEL.md).
.PHONY: bench-nightly-sample
bench-nightly-sample: up
	@$(PY) -m bench.nightly_sample --cutoff $(or $(CUTOFF),2026-11-23) --sizes 500 1000 2500 --json .local/bench/nightly_sample.json

# The nightly workflow (features -> train -> evaluate and gate -> score -> compile trees ->
# publish) on the local workflows emulator: progress per step, the evaluation table, the
# summary (docs/NIGHTLY.md). Needs history in the read models: `cartwise backfill`.
.PHONY: nightly
nightly: up
	@$(VENV)/bin/cartwise nightly $(if $(CUTOFF),--cutoff $(CUTOFF))
