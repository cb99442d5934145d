# Two commands on a fresh machine with Python 3.11:  make demo  |  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sepkit-installed

.PHONY: install demo test test-fast lint clean mini-data hsm-mini

install: $(STAMP)

$(STAMP): setup.py setup.cfg pyproject.toml examples/sepkit-example-plugin/setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.9.1" "torchaudio==2.9.*"
	# tinysoundfont renders SF2 for sepkit-mini; --no-deps skips pyaudio (realtime playback only), which does not build here
	$(BIN)/python -m pip install --quiet --no-deps "tinysoundfont==0.3.7"
	$(BIN)/python -m pip install --quiet -e ".[test,lint]" -e examples/sepkit-example-plugin
	# laion-clap (clap-laion) pins numpy<2 and lists training-only deps (wandb, webdataset, ...) in its metadata;
	# its model code runs on numpy 2 and needs only torchvision, torchlibrosa, librosa, ftfy, h5py (setup.cfg)
	$(BIN)/python -m pip install --quiet --no-deps "laion-clap==1.1.7"
	# audiocraft 1.3.0 (audiocraft-encodec codec) pins torch 2.1 and ships an sdist only; without its pins it imports and
	# runs EnCodec on torch 2.9.1 given these deps (xformers 0.0.33.post2 is the build for torch 2.9.1)
	$(BIN)/python -m pip install --quiet --no-deps "audiocraft==1.3.0"
	$(BIN)/python -m pip install --quiet "av==18.1.0" "xformers==0.0.33.post2" "torchmetrics==1.9.0" "spacy==3.8.18" "einops==0.8.2" "julius==0.2.8" "flashy==0.0.2" "hydra-core==1.3.8" "num2words==0.5.14" "sentencepiece==0.2.3" "torch==2.9.1"
	touch $(STAMP)

demo: install
	$(BIN)/python examples/demo.py

test: install
	$(BIN)/python -m pytest -q tests examples/sepkit-example-plugin/tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests examples/sepkit-example-plugin/tests

# sepkit-mini (data/mini) and its frozen test sets in data/mixes (docs/testsets.md; about 3 min in all):
# mini-hsm_tss-val and mini-hsm_tss write hsm_tss_val.jsonl and hsm_tss_test.jsonl, as the mini recipes expect
mini-data: install
	$(BIN)/sepkit data mini --out data/mini
	$(BIN)/sepkit data testset mini-hsm_tss-val --out data/mixes
	$(BIN)/sepkit data testset mini-hsm_tss --out data/mixes
	$(BIN)/sepkit data testset mini-3sets --out data/mixes
	$(BIN)/sepkit data testset mini-music_zeroshot --out data/mixes
	$(BIN)/sepkit data testset mini-dcase --out data/mixes
	$(BIN)/sepkit data testset mini-hybrid_sep --out data/mixes

lint: install
	$(BIN)/ruff check sepkit plugins tests examples benchmarks
	$(BIN)/lint-imports  # the layering contracts in .importlinter

clean:
	rm -rf $(VENV) build *.egg-info

# the mini HSM-TSS chain (AudioMAE, Q-Audio, TF-Codec, codec-ar, global, local, joint, Ours_local) on sepkit-mini;
# CPU, about 1.5 h on 2 cores; recipes/mini/hsm_tss.train/README.md has our run's figures
hsm-mini: install
	bash recipes/mini/hsm_tss.train/train_chain.sh
