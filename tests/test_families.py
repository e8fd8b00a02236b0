"""Every architecture family in lnft.components, on a tiny random model saved to a directory and used
through the public path (RunConfig(model=DIR), lnft.methods, the run store, lnft train).

The expected counts are computed here from the module tree (module types, forward-hook call order,
parameter identity), not from lnft's maps, so a wrong map entry fails a test."""
import os
import re

import pytest
import torch
from torch import nn

from lnft import RunConfig, changes, fisher, methods
from lnft.components import COMPONENT_ORDER, LAYERNORM_COMPONENTS, describe_model
from lnft.models import load_model

FAMILIES = ["bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "distilbert", "albert", "mpnet"]
# LoRA's default targets per family as the original papers/peft apply them (query and value projections)
LORA_TARGETS = {"deberta-v2": ("query_proj", "value_proj"), "distilbert": ("q_lin", "v_lin"), "mpnet": ("q", "v")}
# IA3's scaled modules per family (path ends inside a layer): (scaled on their output, scaled on their input)
_BERT_IA3 = (("attention.self.key", "attention.self.value"), ("attention.output.dense", "output.dense"))
IA3_MODULES = {"deberta-v2": (("attention.self.key_proj", "attention.self.value_proj"), _BERT_IA3[1]),
               "distilbert": (("attention.k_lin", "attention.v_lin"), ("ffn.lin2",)),
               "albert": (("attention.key", "attention.value"), ("ffn_output",)),
               "mpnet": (("attention.attn.k", "attention.attn.v"), ("output.dense",))}
TINY = dict(task="sst2", max_train_samples=16, max_eval_samples=8, epochs=1, batch_size=8, device="cpu")


def _config(model_type: str, vocab_size: int):
    from transformers import AutoConfig

    if model_type == "distilbert":
        kw = dict(n_layers=2, dim=32, n_heads=2, hidden_dim=37)
    else:
        kw = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=37)
    if model_type in ("albert", "electra"):
        kw["embedding_size"] = 16  # ALBERT's factorised embedding, ELECTRA's embeddings_project
    if model_type == "deberta-v2":  # DeBERTa-v3's settings: relative positions with their own LayerNorm
        kw.update(relative_attention=True, position_buckets=8, norm_rel_ebd="layer_norm", share_att_key=True,
                  pos_att_type=["p2c", "c2p"], max_relative_positions=-1)
    return AutoConfig.for_model(model_type, vocab_size=vocab_size, pad_token_id=0, max_position_embeddings=130,
                                **kw)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """family -> a directory with a tiny random model and the embedded BERT tokenizer (vocabulary matched)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lnft.sources import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    root = tmp_path_factory.mktemp("families")
    out = {}
    for family in FAMILIES:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(_config(family, len(tokenizer)))
        path = root / family
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        out[family] = str(path)
    return out


def _encoder(model):
    return getattr(model, model.base_model_prefix)


def _independent(model) -> dict[str, set[str]]:
    """Parameter names per method, from the module tree alone."""
    names = {id(p): n for n, p in model.named_parameters()}
    encoder = {id(p) for p in _encoder(model).parameters()}
    head = {n for i, n in names.items() if i not in encoder}
    ln_modules = {n: m for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    layernorm = {f"{n}.{p}" for n, m in ln_modules.items() for p, _ in m.named_parameters(recurse=False)}
    # LayerNorms inside a layer (a module path "...<digit>." above them), in the order a forward pass calls them
    order = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n)) for n, m in ln_modules.items()]
    with torch.no_grad():
        model.eval()(input_ids=torch.tensor([[101, 2023, 2003, 102]]), attention_mask=torch.ones(1, 4, dtype=torch.long))
    for h in hooks:
        h.remove()
    first_call = {n: order.index(n) for n in ln_modules}
    per_layer = {}
    for n in ln_modules:
        match = re.match(r"(.*\.\d+)\.[^\d]", n)
        if match and match.group(1).startswith(model.base_model_prefix):
            per_layer.setdefault(match.group(1), []).append(n)
    for layer in per_layer.values():
        layer.sort(key=first_call.get)
        assert len(layer) == 2, layer  # an attention-output and an output LayerNorm per layer
    ln_params = lambda mods: {f"{n}.{p}" for n in mods for p in ("weight", "bias")}  # noqa: E731
    biases = {f"{n}.bias" for n, m in model.named_modules()
              if isinstance(getattr(m, "bias", None), nn.Parameter) and id(m.bias) in encoder}
    return {"head": head, "layernorm": layernorm | head, "bitfit": biases | head,
            "layernorm-attention": ln_params(layer[0] for layer in per_layer.values()) | head,
            "layernorm-output": ln_params(layer[-1] for layer in per_layer.values()) | head}


def _count(model, names) -> int:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in names)


@pytest.mark.parametrize("family", FAMILIES)
def test_trainable_counts_match_the_module_tree(family, model_dirs):
    path = model_dirs[family]
    model = load_model(path, 2)
    expected = _independent(model)
    for method in ["head", "layernorm", "bitfit", "layernorm-attention", "layernorm-output"]:
        cfg = RunConfig(model=path, method=method, **TINY).validate()
        prepared = methods.prepare(load_model(path, 2), cfg)
        assert set(prepared.trainable) == expected[method], (family, method)
        assert prepared.trainable_params == _count(model, expected[method]), (family, method)
    # LoRA: r·(in + out) per targeted projection (query and value of every layer), plus the head
    cfg = RunConfig(model=path, method="lora", **TINY).validate()
    targets = LORA_TARGETS.get(family, ("query", "value"))
    assert cfg.lora_targets == targets  # the family's default, explicit in the run id
    linears = [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.endswith(targets)]
    assert len(linears) == 2 * (1 if family == "albert" else 2)  # ALBERT: one shared layer
    lora = sum(cfg.lora_r * (m.in_features + m.out_features) for m in linears)
    prepared = methods.prepare(load_model(path, 2), cfg)
    assert prepared.trainable_params == lora + _count(model, expected["head"])
    # the ablations: gains or biases of the same LayerNorm modules
    layernorm = expected["layernorm"] - expected["head"]
    for method, kind in (("layernorm-gain", ".weight"), ("layernorm-bias", ".bias")):
        prepared = methods.prepare(load_model(path, 2), RunConfig(model=path, method=method, **TINY).validate())
        assert set(prepared.trainable) == {n for n in layernorm if n.endswith(kind)} | expected["head"], method
    # random-channels: exactly LayerNorm's element count, drawn from the encoder's biases and LayerNorms
    prepared = methods.prepare(load_model(path, 2), RunConfig(model=path, method="random-channels", **TINY))
    assert sum(int(m.sum()) for m in prepared.masks.values()) == _count(model, layernorm)
    assert set(prepared.masks) <= (expected["bitfit"] | layernorm) - expected["head"]
    # IA3: one vector per scaled module: out_features for keys/values, in_features for the FFN's 2nd layer
    outputs, inputs = IA3_MODULES.get(family, _BERT_IA3)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(model.base_model_prefix)}
    scaled_out = [m.out_features for n, m in linears.items() if re.search(r"\.\d+\.(%s)$" % "|".join(outputs), n)]
    scaled_in = [m.in_features for n, m in linears.items() if re.search(r"\.\d+\.(%s)$" % "|".join(inputs), n)]
    layers = 1 if family == "albert" else 2
    assert len(scaled_out) == 2 * layers and len(scaled_in) == len(inputs) * layers, (scaled_out, scaled_in)
    cfg = RunConfig(model=path, method="ia3", **TINY).validate()
    prepared = methods.prepare(load_model(path, 2), cfg)
    assert prepared.trainable_params == sum(scaled_out) + sum(scaled_in) + _count(model, expected["head"]), family


@pytest.mark.parametrize("family", FAMILIES)
def test_every_encoder_parameter_has_a_label(family, model_dirs):
    model = load_model(model_dirs[family], 2)
    infos = describe_model(model)
    encoder = {id(p) for p in _encoder(model).parameters()}
    layernorm = _independent(model)["layernorm"] - _independent(model)["head"]
    for name, p in model.named_parameters():
        info = infos[name]
        assert (info.group == "head") == (id(p) not in encoder), name
        if info.group != "head":
            assert info.component in COMPONENT_ORDER and info.group in ("embeddings", "layer", "pooler"), name
            assert info.is_layernorm == (name in layernorm) == (info.component in LAYERNORM_COMPONENTS), name
    layers = {i.layer for i in infos.values() if i.group == "layer"}
    assert layers == ({0} if family == "albert" else {0, 1})  # ALBERT's one shared layer counts as layer 0
    in_layer = [i.component for i in infos.values() if i.group == "layer" and i.layer == 0 and i.kind == "weight"]
    assert in_layer == [c for c in COMPONENT_ORDER[:8] if c in in_layer] or family == "albert"  # forward order


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_run_changes_and_fisher(family, model_dirs, tmp_path):
    from lnft.store import RunStore

    path = model_dirs[family]
    store = RunStore(tmp_path / "runs")
    pre = {n: p.detach().clone() for n, p in load_model(path, 2).named_parameters()}
    ln_names = methods.layernorm_param_names(load_model(path, 2))
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(pre[n].shape, generator=gen) < 0.5 for n in ln_names}
    mask_path = methods.save_masks(masks, str(tmp_path / "masks.safetensors"))
    cfg = RunConfig(model=path, method="layernorm-masked", mask_path=mask_path, lr=5e-2, **TINY)
    result = store.get_or_run(cfg, progress=False)
    trained = store.tensors(result)
    moved = 0
    for name, mask in masks.items():
        after = trained.get(name, pre[name])
        assert torch.equal(after[~mask], pre[name][~mask]), name  # bit-identical outside the mask
        moved += int((after[mask] != pre[name][mask]).sum())
    assert moved > 0
    frame = changes.run_changes(result, store)
    labels = set(frame["component"].astype(str))
    assert {"attn-out LN", "output LN", "emb LN"} <= labels <= set(COMPONENT_ORDER)
    changed = frame[(frame["kind"] == "all") & (frame["measure"] == "mean_abs") & (frame["value"] > 0)]
    assert set(changed["component"].astype(str)) <= set(LAYERNORM_COMPONENTS)
    values = fisher.mean_fisher(fisher.fisher_for_task(RunConfig(model=path, method="layernorm", **TINY),
                                                       n_samples=8, store=store))
    assert set(values) == set(ln_names)
    mass = fisher.mass_frame(values, task="sst2")
    assert set(mass["component"]) <= set(LAYERNORM_COMPONENTS) and mass["fisher_mass"].gt(0).all()


def test_an_unknown_model_type_warns_once_and_labels_layernorms_by_type(capsys):
    """The generic rule: an encoder type without a map (here a BERT saved as 'megatron-bert')."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from lnft import components

    config = AutoConfig.for_model("megatron-bert", vocab_size=64, num_hidden_layers=2, hidden_size=32,
                                  num_attention_heads=2, intermediate_size=37)
    model = AutoModelForSequenceClassification.from_config(config)
    components._warned.discard("megatron-bert")
    infos = describe_model(model)
    describe_model(model)
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if "megatron-bert" in line]) == 1 and len(err) == 1, err
    ln = {f"{n}.{p}" for n, m in model.named_modules() if isinstance(m, nn.LayerNorm) for p in ("weight", "bias")}
    assert {n for n, i in infos.items() if i.is_layernorm} == ln and ln
    with pytest.raises(Exception, match="needs a component map"):
        methods.prepare(model, RunConfig(method="layernorm-output"))


def test_lnft_train_on_a_model_directory(model_dirs, tmp_path, capsys):
    import json

    from lnft.cli import main

    argv = ["train", "--task", "sst2", "--method", "layernorm", "--model", model_dirs["distilbert"],
            "--max-train-samples", "16", "--max-eval-samples", "8", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu", "--no-progress", "--json", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = load_model(model_dirs["distilbert"], 2)
    assert record["trainable_params"] == _count(model, _independent(model)["layernorm"])
    assert record["model"] == model_dirs["distilbert"]


NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def test_reports_overrides_reach_every_notebook(model_dirs, tmp_path):
    from lnft import reports
    from lnft.errors import LnftError

    (tmp_path / "glue" / "RTE").mkdir(parents=True)
    rows = "index\tsentence1\tsentence2\tlabel\n" + "".join(
        f"{i}\ta b {i}\tc\t{'entailment' if i % 2 else 'not_entailment'}\n" for i in range(20))
    for split in ("train", "dev"):
        (tmp_path / "glue" / "RTE" / f"{split}.tsv").write_text(rows)
    names = reports.available_notebooks(NOTEBOOKS)
    one_seed = {"model": model_dirs["albert"], "data_dir": str(tmp_path / "glue"), "tasks": ["rte"], "seeds": [3]}
    with pytest.raises(LnftError, match="decide mode needs at least 2 seeds.*--no-decide"):  # smoke decides in 2, 3
        reports.plan_parameters("smoke", names, NOTEBOOKS, one_seed)
    given = {**one_seed, "lr": 0.05, "decide": False}
    plan = reports.plan_parameters("smoke", names, NOTEBOOKS, given)
    for name in names:
        assert {k: plan[name][k] for k in ("model", "data_dir", "tasks", "seeds")} == \
            {k: given[k] for k in ("model", "data_dir", "tasks", "seeds")}, name
    assert "lr" in plan["01_change_analysis"] and "lr" not in plan["02_peft_comparison"]  # nb 2 has lr_grid
    assert reports.parse_value("[0, 1]") == [0, 1] and reports.parse_value("{full: 2}") == {"full": 2}
    assert reports.parse_value("None") is None and reports.parse_value("sst2") == "sst2"


def test_smoke_reports_on_a_local_model(model_dirs, tmp_path):
    """lnft reports --model DIR: notebook 1 (smoke) on a tiny DistilBERT, its overrides on the index."""
    import json

    import nbformat

    from lnft.cli import main

    out, runs = tmp_path / "reports", tmp_path / "runs"
    code = main(["reports", "--profile", "smoke", "--notebooks", "01_change_analysis", "--notebooks-dir", NOTEBOOKS,
                 "--model", model_dirs["distilbert"], "--tasks", "sst2", "--out", str(out), "--runs", str(runs)])
    target = out / "smoke"
    assert code == 0, (target / "reports.json").read_text()
    state = json.loads((target / "reports.json").read_text())
    [record] = state["notebooks"]
    assert record["parameters"] == {"model": model_dirs["distilbert"], "tasks": ["sst2"]}
    assert state["facts"]["parameters"] == {"model": model_dirs["distilbert"], "tasks": ["sst2"]}
    assert model_dirs["distilbert"] in (target / "index.html").read_text()
    nb = nbformat.read(target / "01_change_analysis.ipynb", as_version=4)
    text = "".join(str(o.get("text", "")) + str(o.get("data", {})) for c in nb.cells for o in c.get("outputs", []))
    injected = [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "checks passed" in text and model_dirs["distilbert"] in injected[0]


@pytest.mark.parametrize("family", ["albert", "deberta-v2", "distilbert"])
def test_fisher_hooks_agree_with_the_loop(family, model_dirs):
    """Closed-form per-example gradients where a LayerNorm runs several times per forward (ALBERT's shared
    layer) or its output is shared by all examples (DeBERTa's relative-position LN), and without token types."""
    from lnft.data import Collator, load_task_data, tokenize
    from lnft.models import load_tokenizer
    from lnft.tasks import get_task

    path, task = model_dirs[family], get_task("mrpc")
    cfg = RunConfig(model=path, task="mrpc", max_train_samples=20).validate()
    tok = load_tokenizer(path)
    train = tokenize(load_task_data(cfg, task), tok, task, 48)["train"]
    batch = Collator(tok, False)([train[i] for i in range(5)])
    torch.manual_seed(0)
    model = load_model(path, 2)
    ref = _fisher_one_by_one(model, batch)
    got = fisher.fisher_diagonal(model, [batch], regression=False, num_labels=2, algorithm="hooks").values
    assert set(got) == set(ref) == set(methods.layernorm_param_names(model))
    scale = max(float(v.abs().max()) for v in ref.values())
    assert scale > 0
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-6 * scale, rtol=1e-4)


def _fisher_one_by_one(model, batch):
    """The empirical Fisher the plain way: one unpadded example at a time, autograd, the usual 2-D mask."""
    from lnft.models import accepts

    model.eval()
    names = methods.layernorm_param_names(model)
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(True)
    total = {n: torch.zeros_like(params[n], dtype=torch.float64) for n in names}
    lengths = batch["attention_mask"].sum(-1).tolist()
    for i, length in enumerate(lengths):
        inputs = {"input_ids": batch["input_ids"][i:i + 1, :length],
                  "attention_mask": batch["attention_mask"][i:i + 1, :length]}
        if accepts(model, "token_type_ids"):
            inputs["token_type_ids"] = batch["token_type_ids"][i:i + 1, :length]
        logp = torch.log_softmax(model(**inputs).logits.float(), -1)[0, batch["labels"][i]]
        for name, g in zip(names, torch.autograd.grad(logp, [params[n] for n in names])):
            total[name] += g.double() ** 2
    return {n: t / len(lengths) for n, t in total.items()}


def test_a_model_whose_norms_are_not_layernorms_is_refused_for_layernorm_methods():
    """DeBERTa v1 normalises with its own DebertaLayerNorm (no family map, not nn.LayerNorm): the generic
    rule finds no LayerNorm, and `layernorm` would train the head alone, so it is refused."""
    from types import SimpleNamespace

    from transformers import AutoConfig, AutoModelForSequenceClassification

    from lnft.errors import LnftError

    config = AutoConfig.for_model("deberta", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=37, vocab_size=100, max_position_embeddings=64)
    model = AutoModelForSequenceClassification.from_config(config)
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())
    with pytest.raises(LnftError, match="has no LayerNorm module lnft recognises"):
        methods.prepare(model, SimpleNamespace(method="layernorm", mask_path=None))
    assert methods.prepare(model, SimpleNamespace(method="head", mask_path=None)).trainable_params > 0


# ------------------------------------------------------------------ issue 31: a model directory, checked up front
def _edited(model_dirs, tmp_path, family="bert", **config) -> str:
    """A copy of a tiny model directory whose config.json has ``config`` changed (its weights as saved)."""
    import json
    import shutil

    path = tmp_path / f"{family}-edited"
    shutil.copytree(model_dirs[family], path)
    values = json.loads((path / "config.json").read_text())
    values.update(config)
    (path / "config.json").write_text(json.dumps(values))
    return str(path)


def _refused(argv, capsys, monkeypatch, tmp_path) -> str:
    """exit 2 with one line, before any model loads, nothing stored; the line."""
    import lnft.models
    import lnft.train
    from lnft.cli import main

    def work(*a, **k):
        pytest.fail("work started on bad input")

    monkeypatch.setattr(lnft.models, "_load_pretrained", work)
    monkeypatch.setattr(lnft.train, "finetune", work)
    out = tmp_path / "runs"
    extra = ["--out", str(out), "--task", "sst2", "--method", "head", "--device", "cpu"] if argv[0] == "train" else []
    code = main(argv + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("lnft: error: "), err
    assert not out.exists()
    return err


DISAGREEING = {  # config.json change -> the error line
    # the tiny models have 2 layers: 1 would silently drop a layer's weights, -1 built a 0-layer model (stored ok)
    "fewer layers than the weights": ({"num_hidden_layers": 1}, "the weights hold 16 encoder tensor(s) its config.json "
                                      "does not describe, e.g. bert.encoder.layer.1."),
    "negative layers": ({"num_hidden_layers": -1}, "config.json has num_hidden_layers -1; allowed: an integer >= 1"),
    "negative vocabulary": ({"vocab_size": -5}, "config.json has vocab_size -5; allowed: an integer >= 1"),
    "no attention heads": ({"num_attention_heads": 0}, "config.json has num_attention_heads 0; allowed: an integer"),
    "layers as text": ({"num_hidden_layers": "2"}, "config.json has num_hidden_layers '2'; allowed: an integer >= 1"),
    "dropout above 1": ({"hidden_dropout_prob": 1.5}, "config.json has hidden_dropout_prob 1.5; allowed: a number from 0"),
    "negative epsilon": ({"layer_norm_eps": -1e-12}, "config.json has layer_norm_eps -1e-12; allowed: a finite number"),
}


@pytest.mark.parametrize("case", list(DISAGREEING))
@pytest.mark.parametrize("command", ["train", "methods"])
def test_a_config_that_disagrees_with_its_weights_or_is_invalid_is_refused(case, command, model_dirs, tmp_path,
                                                                           capsys, monkeypatch):
    change, message = DISAGREEING[case]
    model = _edited(model_dirs, tmp_path, **change)
    err = _refused([command, "--model", model], capsys, monkeypatch, tmp_path)
    assert message in err, err


def test_heads_in_a_checkpoint_are_not_extra_encoder_tensors(tmp_path):
    """A masked-LM checkpoint (cls.predictions...) and a classifier's (classifier...) pass: only tensors of the
    encoder's own parts that the config does not describe are refused."""
    import shutil

    from safetensors import safe_open
    from transformers import AutoConfig, BertForMaskedLM

    from lnft.sources import embedded_model_path, model_source

    config = AutoConfig.for_model("bert", vocab_size=30522, num_hidden_layers=1, hidden_size=32,
                                  num_attention_heads=2, intermediate_size=37)
    BertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    shutil.copy(os.path.join(embedded_model_path(), "vocab.txt"), tmp_path / "mlm")
    with safe_open(str(tmp_path / "mlm" / "model.safetensors"), "pt") as fh:
        assert any(k.startswith("cls.") for k in fh.keys())
    model_source(str(tmp_path / "mlm")).check()


def _unreadable(monkeypatch, path) -> None:
    """Make ``path`` unreadable: no permissions; where that does not stop this process (root), open() refuses
    it as the operating system would refuse another user."""
    import builtins

    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        real, target = builtins.open, os.path.realpath(path)

        def guarded(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == target:
                raise PermissionError(13, "Permission denied", str(file))
            return real(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)


@pytest.mark.parametrize("case", ["unreadable weights", "weights a broken link", "unreadable tokenizer",
                                  "unreadable config", "a file, not a directory"])
def test_an_unreadable_model_file_is_called_unreadable_not_missing(case, model_dirs, tmp_path, capsys, monkeypatch):
    model = _edited(model_dirs, tmp_path)
    if case == "unreadable weights":
        _unreadable(monkeypatch, os.path.join(model, "model.safetensors"))
        message = "model.safetensors is unreadable (Permission denied)"
    elif case == "weights a broken link":
        os.remove(os.path.join(model, "model.safetensors"))
        os.symlink(os.path.join(model, "moved.safetensors"), os.path.join(model, "model.safetensors"))
        message = "model.safetensors is unreadable (No such file or directory)"
    elif case == "unreadable tokenizer":
        _unreadable(monkeypatch, os.path.join(model, "tokenizer.json"))
        message = "tokenizer.json is unreadable (Permission denied)"
    elif case == "unreadable config":
        _unreadable(monkeypatch, os.path.join(model, "config.json"))
        message = "config.json cannot be read ([Errno 13] Permission denied"
    else:
        model = os.path.join(model, "tokenizer.json")
        message = "tokenizer.json' is not a directory (a file)"
    err = _refused(["methods", "--model", model], capsys, monkeypatch, tmp_path)
    assert message in err, err
