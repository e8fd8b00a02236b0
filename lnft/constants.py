"""The lowest floor: names and values the other modules share. Imports nothing of lnft."""
from __future__ import annotations

# ------------------------------------------------------------------ sources
EMBEDDED = "embedded"  # the data and model shipped with the package (RunConfig.data / RunConfig.model)
HUB_GLUE = "nyu-mll/glue"  # the hub dataset of GLUE
TASK_SPEC_DATA = "task-spec"  # RunConfig.data of a task-spec run: the data comes from the spec
EMBEDDED_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte")  # the GLUE tasks whose data the package ships
PATH_PREFIXES = ("/", "./", "../", "~")  # a data or model name starting so is a local path
EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2 (embedded)"  # the embedded model, as tables show it
# A model directory: the files that give it a tokenizer, its weight files, and every file the loader may read
# besides the weights (the config and every tokenizer file: TOKENIZER_FILES are all in MODEL_FILES).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "sentencepiece.bpe.model",
                   "tokenizer.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
               "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
               "spm.model", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")

# ------------------------------------------------------------------ run options
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
SELECT_ON = ("validation", "dev")

# ------------------------------------------------------------------ the run store
# Bump when a change makes stored results incomparable that the code hash cannot see (record layout).
# 2: per-example predictions (predictions.npz); 3: fingerprints and file checksums in every record.
STORE_SCHEMA = 3
