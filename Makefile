PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= runs/demo

.PHONY: setup demo test report-shots clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[all,dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m jaxaudio demo --out $(OUT)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=10

report-shots:
	scripts/report_shots.sh $(OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache
