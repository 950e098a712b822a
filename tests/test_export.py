"""Export of stored prompt-tuning runs: PEFT adapters and plain safetensors.

Unit tests use a tiny random-weight BERT saved to a temp folder (with the packaged MiniLM
tokenizer); the integration test trains a real shallow run on the packaged model for 3 steps and
checks that PEFT, loading the exported adapter, predicts exactly what our own forward predicts.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from peft import PeftConfig, PeftModel  # a dev dependency (requirements-dev.txt): missing, the tests fail
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

from ipt_core.backbones import Backbone, load_backbone, packaged_model_path
from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.export import (
    PEFT_TASK_TYPES,
    ExportError,
    export_prompt,
    model_folder,
    peft_adapter_config,
)
from ipt_core.experiments.tune import pt_spec, tune, tune_command
from ipt_core.store import Store
from ipt_core.tasks import Suite

SHALLOW = PTConfig(kind="shallow", n_tokens=4, steps=3, eval_every=3)
DEEP = PTConfig(kind="deep", n_tokens=4, steps=3, eval_every=3)


# ------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir) -> Backbone:
    return load_backbone(f"encoder-sim:{tiny_bert_dir}")


def put_run(store: Store, bb: Backbone, task, seed: int, cfg: PTConfig, prompt: torch.Tensor | None = None,
            command: str | None = "python -m ipt_core tune ...") -> str:
    """A fake stored PT run (the export only reads the store; it does not care how it was trained)."""
    if prompt is None:
        gen = torch.Generator().manual_seed(seed)
        prompt = torch.randn(bb.prompt_shape(cfg.n_tokens, cfg.kind), generator=gen)
    entry = store.put("pt_run", pt_spec(bb, task, seed, cfg), {"task": task.name, "seed": seed},
                      {"prompt": prompt}, command=command)
    return entry.key


def our_scores(bb: Backbone, task, prompt: torch.Tensor, *, zero_token_types: bool = False) -> torch.Tensor:
    """Label scores of the task's test rows by our own forward: ``[N, n_labels]``."""
    rows = list(task.test)
    enc = bb.collate(rows)
    if zero_token_types and enc.token_type_ids is not None:
        enc.token_type_ids = torch.zeros_like(enc.token_type_ids)
    with torch.no_grad():
        return bb.logits(enc, torch.zeros(len(rows), dtype=torch.long), bb.label_table([task]),
                         prompt[None].expand(len(rows), -1, -1), "shallow")


def peft_scores(model_dir: str | Path, adapter_dir: Path, task, temperature: float) -> torch.Tensor:
    """The same scores computed independently: PEFT's own forward, then the encoder-sim head.

    Mean pool over the prompt + input attention mask, L2-normalise, cosine with the label-name
    embeddings of the plain model, divided by the temperature. ``[N, n_labels]``.
    """
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    base = AutoModel.from_pretrained(str(model_dir)).eval()
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(str(model_dir)), str(adapter_dir)).eval()
    n = model.active_peft_config.num_virtual_tokens

    def pooled(hidden, mask):
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)

    rows = list(task.test)
    texts = [r.text for r in rows]
    pairs = [r.text_pair for r in rows] if task.is_pair else None
    with torch.no_grad():
        lab = tok(list(task.labels), padding=True, return_tensors="pt")
        lab_emb = pooled(base(**lab).last_hidden_state, lab["attention_mask"])
        enc = tok(texts, pairs, padding=True, truncation=True, max_length=128, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # token_type_ids included, as a user would pass them
        mask = torch.cat([torch.ones(len(rows), n, dtype=enc["attention_mask"].dtype), enc["attention_mask"]], 1)
        return pooled(hidden, mask) @ lab_emb.T / temperature


# ------------------------------------------------------------------------------- PEFT adapter


def test_peft_adapter_layout_and_config(tmp_path, tiny, tiny_bert_dir, demo):
    store = Store(tmp_path / "cache")
    task = demo.task("sms_spam")
    key = put_run(store, tiny, task, 0, SHALLOW)
    out = export_prompt(store, demo, "sms_spam", 0, SHALLOW, tmp_path / "adapter", backbone=tiny)
    assert out == tmp_path / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING"
    assert config["task_type"] == "FEATURE_EXTRACTION"
    assert config["num_virtual_tokens"] == 4 and config["token_dim"] == 32
    assert config["num_layers"] == 2 and config["num_attention_heads"] == 2
    assert config["num_transformer_submodules"] == 1
    assert config["base_model_name_or_path"] == str(Path(tiny_bert_dir).resolve())
    assert config["inference_mode"] is True
    loaded = PeftConfig.from_pretrained(str(out))
    assert loaded.num_virtual_tokens == 4 and loaded.peft_type == "PROMPT_TUNING"
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        assert list(f.keys()) == ["prompt_embeddings"]
        assert torch.equal(f.get_tensor("prompt_embeddings"), store.get(key).tensor("prompt"))
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["store_key"] == key and meta["task"] == "sms_spam"


@pytest.mark.filterwarnings("ignore:Token type ids are not supported")  # all zeros for one text: harmless
def test_peft_adapter_gives_our_scores_tiny_model(tmp_path, tiny, tiny_bert_dir, demo):
    store = Store(tmp_path / "cache")
    task = demo.task("sms_spam")
    prompt = torch.randn(4, 32, generator=torch.Generator().manual_seed(3))
    put_run(store, tiny, task, 0, SHALLOW, prompt)
    out = export_prompt(store, demo, "sms_spam", 0, SHALLOW, tmp_path / "a", backbone=tiny)
    ours = our_scores(tiny, task, prompt)
    theirs = peft_scores(tiny_bert_dir, out, task, tiny.temperature)
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    assert torch.equal(theirs.argmax(-1), ours.argmax(-1))


def test_pair_task_differs_only_by_token_type_ids(tmp_path, tiny, tiny_bert_dir, demo):
    """PEFT drops token_type_ids for prompt tuning: equal to our forward with segment ids all 0."""
    store = Store(tmp_path / "cache")
    task = demo.task("nli")
    assert task.is_pair
    prompt = torch.randn(4, 32, generator=torch.Generator().manual_seed(4))
    put_run(store, tiny, task, 0, SHALLOW, prompt)
    out = export_prompt(store, demo, "nli", 0, SHALLOW, tmp_path / "a", backbone=tiny)
    with pytest.warns(UserWarning, match="[Tt]oken type ids"):
        theirs = peft_scores(tiny_bert_dir, out, task, tiny.temperature)
    torch.testing.assert_close(theirs, our_scores(tiny, task, prompt, zero_token_types=True), atol=1e-4, rtol=0)
    assert "token_type_ids" in (out / "README.md").read_text()


@pytest.mark.parametrize("kind", sorted(PEFT_TASK_TYPES))
def test_hand_written_config_equals_peft(kind, tmp_path):
    """Without PEFT installed the same adapter_config.json is written (peft_version aside it is identical)."""
    config = SimpleNamespace(num_attention_heads=4, hidden_size=16, num_hidden_layers=3)
    stub = SimpleNamespace(kind=kind, spec=f"{kind}:{tmp_path}", hidden_size=16, num_layers=3,
                           model=SimpleNamespace(config=config, name_or_path=str(tmp_path)))
    by_peft = peft_adapter_config(stub, 5, use_peft=True)
    by_hand = peft_adapter_config(stub, 5, use_peft=False)
    assert by_hand == by_peft
    assert by_hand["task_type"] == PEFT_TASK_TYPES[kind]
    assert by_hand["num_transformer_submodules"] == 1  # seq2seq too: our prompt is on the encoder only
    assert by_hand["base_model_name_or_path"] == str(tmp_path.resolve())


def test_model_folder_of_packaged_backbone_is_the_package_folder():
    stub = SimpleNamespace(spec="encoder-sim", model=SimpleNamespace(name_or_path=str(packaged_model_path()),
                                                                     config=SimpleNamespace()))
    assert model_folder(stub) == str(packaged_model_path().resolve())
    memory_only = SimpleNamespace(spec="encoder-sim", model=SimpleNamespace(name_or_path="",
                                                                            config=SimpleNamespace()))
    assert model_folder(memory_only) is None


# --------------------------------------------------------------------------------- safetensors


def test_safetensors_export_of_a_deep_prompt(tmp_path, tiny, demo):
    store = Store(tmp_path / "cache")
    task = demo.task("emotion")
    key = put_run(store, tiny, task, 2, DEEP)
    path = export_prompt(store, demo, "emotion", 2, DEEP, tmp_path / "out", fmt="safetensors", backbone=tiny)
    assert path == tmp_path / "out" / "prompt.safetensors"
    with safe_open(str(path), "pt") as f:
        assert list(f.keys()) == ["prompt"]
        prompt = f.get_tensor("prompt")
        meta = f.metadata()
    assert prompt.shape == (2, 4, 32)
    assert torch.equal(prompt, store.get(key).tensor("prompt"))
    assert meta["task"] == "emotion" and meta["seed"] == "2" and meta["kind"] == "deep"
    assert meta["backbone"] == tiny.spec and meta["store_key"] == key
    assert json.loads(meta["labels"]) == list(task.labels)
    assert PTConfig(**json.loads(meta["pt_config"])) == DEEP
    assert meta["command"] == "python -m ipt_core tune ..."


# ------------------------------------------------------------------------------------- errors


def test_deep_prompt_as_peft_is_refused_before_anything_is_written(tmp_path, tiny, demo):
    store = Store(tmp_path / "cache")
    put_run(store, tiny, demo.task("sms_spam"), 0, DEEP)
    with pytest.raises(ExportError, match="per-layer") as err:
        export_prompt(store, demo, "sms_spam", 0, DEEP, tmp_path / "out", fmt="peft", backbone=tiny)
    assert "--format safetensors" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_run_names_the_exact_tune_command(tmp_path, tiny, demo):
    store = Store(tmp_path / "cache")
    cfg = PTConfig(kind="shallow", n_tokens=6, steps=40, lr=0.05, batch_size=8, eval_every=20, patience=3)
    with pytest.raises(ExportError) as err:
        export_prompt(store, demo, "sms_spam", 7, cfg, tmp_path / "out", backbone=tiny)
    msg = str(err.value)
    assert "sms_spam" in msg and "seed 7" in msg
    line = next(l.strip() for l in msg.splitlines() if l.strip().startswith("python -m ipt_core tune"))
    assert line.startswith(tune_command("demo", ["sms_spam"], [7], cfg, tiny.spec))
    assert not (tmp_path / "out").exists()
    # the command, run through our own CLI parser, asks for exactly the missing run
    args = cli.build_parser().parse_args(shlex.split(line)[3:])
    assert cli_args.pt_config(args) == cfg
    assert (args.suite, args.tasks, args.seed_list, args.backbone) == ("demo", ["sms_spam"], [7], tiny.spec)
    assert Path(args.cache).resolve() == store.root


def test_missing_run_of_a_resampled_suite_names_k_and_data_seed(tmp_path, tiny, demo):
    suite = Suite(demo.name, demo.source, (demo.task("sms_spam").resample(4, 9),))
    with pytest.raises(ExportError) as err:
        export_prompt(Store(tmp_path / "c"), suite, "sms_spam", 0, SHALLOW, tmp_path / "o", backbone=tiny)
    line = next(l.strip() for l in str(err.value).splitlines() if l.strip().startswith("python -m"))
    args = cli.build_parser().parse_args(shlex.split(line)[3:])
    assert (args.k, args.data_seed) == (4, 9)


def test_init_text_is_part_of_the_command(tmp_path, tiny, demo):
    cfg = PTConfig(kind="shallow", init="text", init_text="is this spam?")
    with pytest.raises(ExportError) as err:
        export_prompt(Store(tmp_path / "c"), demo, "sms_spam", 0, cfg, tmp_path / "o", backbone=tiny)
    line = next(l.strip() for l in str(err.value).splitlines() if l.strip().startswith("python -m"))
    assert cli_args.pt_config(cli.build_parser().parse_args(shlex.split(line)[3:])) == cfg


@pytest.mark.parametrize("cfg", [PTConfig(kind="shallow", init="text", init_text="-is this spam?"),
                                 PTConfig(lr=0.1 + 0.2, steps=7, patience=None),
                                 PTConfig(max_grad_norm=1e-3, init_text="--x", init="text")])
def test_tune_command_parses_back_to_its_config(cfg):
    """The reproducing command of a tune request rebuilds the same config through the CLI's own parser,
    a text that starts with a dash included."""
    line = tune_command("demo", ["sms_spam"], [3], cfg, "encoder-sim")
    args = cli.build_parser().parse_args(shlex.split(line)[3:])
    assert cli_args.pt_config(args) == cfg and args.seed_list == [3]


def test_other_bad_requests(tmp_path, tiny, demo):
    store = Store(tmp_path / "cache")
    put_run(store, tiny, demo.task("sms_spam"), 0, SHALLOW)
    with pytest.raises(ExportError, match="format"):
        export_prompt(store, demo, "sms_spam", 0, SHALLOW, tmp_path / "o", fmt="onnx", backbone=tiny)
    with pytest.raises(KeyError, match="no_such_task"):
        export_prompt(store, demo, "no_such_task", 0, SHALLOW, tmp_path / "o", backbone=tiny)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_prompt(store, demo, "sms_spam", 0, SHALLOW, a_file, backbone=tiny)
    # a stored prompt whose shape does not match its config is not exported as something else
    bad = PTConfig(kind="shallow", n_tokens=5)
    put_run(store, tiny, demo.task("sms_spam"), 0, bad, prompt=torch.zeros(3, 32))
    with pytest.raises(ExportError, match="shape"):
        export_prompt(store, demo, "sms_spam", 0, bad, tmp_path / "o2", backbone=tiny)


def test_cli_export_missing_run_exits_2_with_the_command(tmp_path, tiny_bert_dir, capsys):
    code = cli.main(["export", "--suite", "demo", "--task", "sms_spam", "--out", str(tmp_path / "o"),
                     "--prompt-kind", "shallow", "--backbone", f"encoder-sim:{tiny_bert_dir}", "--device", "cpu",
                     "--cache", str(tmp_path / "cache")])
    assert code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "python -m ipt_core tune --suite demo --tasks sms_spam --seed-list 0" in err
    assert "Traceback" not in err


# -------------------------------------------------------------------- real model, real training


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Token type ids are not supported")  # all zeros for one text: harmless
def test_real_shallow_run_loads_in_peft_with_the_same_predictions(tmp_path, demo, capsys):
    """The issue's acceptance test: train a real shallow PT run (3 steps), export, load with PEFT."""
    store = Store(tmp_path / "cache")
    cfg = PTConfig(kind="shallow", steps=3, eval_every=3)
    report = tune(store, demo, ["movie_sentiment"], [0], cfg, backbone="encoder-sim", device="cpu",
                  with_baselines=False)
    # through the CLI, as a user would
    code = cli.main(["export", "--suite", "demo", "--task", "movie_sentiment", "--seed", "0", "--out",
                     str(tmp_path / "adapter"), "--prompt-kind", "shallow", "--steps", "3", "--eval-every", "3",
                     "--device", "cpu", "--cache", str(store.root), "--json"])
    assert code == 0
    out = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["task_type"] == "FEATURE_EXTRACTION" and config["num_virtual_tokens"] == 8
    assert config["token_dim"] == 384 and config["num_layers"] == 6
    assert config["base_model_name_or_path"] == str(packaged_model_path().resolve())

    from ipt_core.experiments.context import cached_backbone

    bb = cached_backbone("encoder-sim", "cpu")
    task = demo.task("movie_sentiment")
    prompt = store.get(report.keys[0]).tensor("prompt")
    assert prompt.shape == (8, 384)
    ours = our_scores(bb, task, prompt)
    theirs = peft_scores(config["base_model_name_or_path"], out, task, bb.temperature)
    assert torch.equal(theirs.argmax(-1), ours.argmax(-1))
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    # and the stored test predictions are the ones PEFT makes
    assert theirs.argmax(-1).tolist() == store.get(report.keys[0]).meta["test_pred"]
