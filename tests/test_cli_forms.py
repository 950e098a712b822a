"""The app's launch forms and the CLI from one source.

- Round trip (no app): every config a form can show, and random configs over the limits' ranges, go
  config -> argv (``ipt_core.cli.args.config_argv``: ``pt_argv``, ``ipt_argv``, ``ist_argv``, ``compare_argv``)
  -> the CLI's own parser (``build_parser().parse_args``) -> the CLI's builder (``pt_config``...) and come
  back equal, with the same JSON (the store key); the CLI's defaults are the configs' defaults.
- Under AppTest: the prompt-tuning and comparison forms queue a job whose argv parses back to the
  config their widgets showed.
- Fuzz under AppTest: random values in every number and text input of a form (inside and outside the
  widget's bounds, unicode, empty), random task choices, then its queue button. The page must show no
  exception, and a job it queues must be a command the CLI accepts (``cli.refusal(argv) is None``): a
  form can offer only what the CLI's limits allow. Volume: ``IPT_FORM_FUZZ_EXAMPLES`` per form (default 6:
  5 forms, 30 cases in CI).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from ipt_app.forms import tune_form_config
from ipt_app.forms_ipt import compare_form_config, ipt_form_config, ipt_run_argv, ist_form_config
from ipt_core import jobs
from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.config import budgets, limits
from ipt_core.config.backbone import PROMPT_KINDS
from ipt_core.config.ipt import NORMS, SUBSPACES, IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.pt import STANDALONE_INITS, PTConfig
from ipt_core.config.registry import CompareSettings
from ipt_core.config.vip import EVAL_MODES

APP = str(Path(__file__).resolve().parent.parent / "app.py")
N_EXAMPLES = int(os.environ.get("IPT_FORM_FUZZ_EXAMPLES", "6"))
# page, key prefix of the form's widgets, its queue button
FORMS = [("prompt_tuning", "pt-tune", "Queue prompt tuning"), ("recovery", "rec-ipt", "Queue IPT sweep"),
         ("recovery", "rec-ist", "Queue intrinsic tuning"), ("stability", "stab-form", "Queue stability run"),
         ("methods", "meth", "Queue comparison")]
TEXTS = ["", " ", "4,16", "2,8,32", "0", "-1", "1e3", "nan", "inf", "x", "4,,8", "٣", "é,ü", "99999999999", ",", "1,1,1"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    mp = pytest.MonkeyPatch()
    mp.setenv("IPT_CACHE", str(root))
    mp.setenv("IPT_JOBS_AUTOSTART", "0")  # nothing runs: the test reads the queued commands
    mp.delenv("IPT_SHIPPED_RESULTS", raising=False)  # the shipped demo subspaces: the IST form needs one
    yield root
    mp.undo()


def _widgets(at: AppTest, kind: str, prefix: str) -> list:
    return [w for w in getattr(at, kind) if (w.key or "").startswith(prefix + "-")]


def _number(w) -> st.SearchStrategy:
    lo, hi = getattr(w, "min", None), getattr(w, "max", None)
    is_int = isinstance(w.value, int)
    near = []
    for b in (lo, hi):
        if b is not None:
            near += [b, b - 1, b + 1] if is_int else [b, b * 0.5, b * 2, -b]
    ints = st.integers(-10**6, 10**9)
    vals = st.sampled_from(near) | ints if near else ints
    return vals if is_int else vals.map(float) | st.floats(-1e6, 1e6, allow_nan=False)


def _button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in at.button]}"
    return found[0]


@pytest.mark.slow  # the app under AppTest, 30 reruns of its pages
@pytest.mark.parametrize("page,prefix,label", FORMS)
def test_what_a_form_queues_the_cli_accepts(store_root, page, prefix, label):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    _button(at, label)  # the form is there

    checked = []

    @settings(max_examples=N_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        before = {j.id for j in jobs.list_jobs(store_root)}
        for w in _widgets(at, "number_input", prefix):
            if data.draw(st.booleans(), label=f"set {w.key}"):
                w.set_value(data.draw(_number(w), label=w.key))
        for w in _widgets(at, "text_input", prefix):
            w.set_value(data.draw(st.sampled_from(["4,16", "2,8,32", "8", "1,64", "4096"]) | st.sampled_from(TEXTS)
                                  | st.text(max_size=8), label=w.key))
        for w in _widgets(at, "multiselect", prefix):
            if w.options and data.draw(st.booleans(), label=f"choose {w.key}"):
                w.set_value(data.draw(st.lists(st.sampled_from(list(w.options)), max_size=4, unique=True), label=w.key))
        _button(at, label).click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        for job in jobs.list_jobs(store_root):
            if job.id not in before:  # every job runs `python -m ipt_core <argv>` (umap included)
                assert cli.refusal(list(job.argv)) is None, (job.argv, cli.refusal(list(job.argv)))
                checked.append(job.argv)

    fuzz()
    # the defaults queue a job the CLI accepts too (and show that the check above sees queued jobs)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    before = {j.id for j in jobs.list_jobs(store_root)}
    _button(at, label).click()
    at.run()
    new = [j for j in jobs.list_jobs(store_root) if j.id not in before]
    print(f"{page}/{prefix}: {len(checked)} fuzzed jobs queued and accepted; defaults queued {len(new)}")
    for job in new:
        assert cli.refusal(list(job.argv)) is None, job.argv


# ------------------------------------------------------------------------------ config -> argv -> config

# the flags a command needs besides the config's (placeholders: the parser alone reads them)
REQUIRED = {"tune": [], "export": ["--task", "sms_spam", "--out", "out"], "ipt": [], "stability": ["--tasks", "sms_spam"],
            "ist": ["--tasks", "sms_spam"], "compare": []}
# the CLI's builders, as cli/main.py's commands call them
BUILD = {"tune": cli_args.pt_config, "export": cli_args.pt_config, "ipt": cli_args.ipt_settings,
         "stability": cli_args.ipt_settings, "ist": cli_args.ist_config, "compare": cli_args.compare_settings}
PARSER = cli.build_parser()  # the whole CLI's, every command registered


def parsed_back(command: str, flags: list[str]):
    """What ``python -m ipt_core COMMAND ... FLAGS`` builds: the CLI's parser, then its builder."""
    return BUILD[command](PARSER.parse_args([command] + REQUIRED[command] + list(flags)))


def assert_round_trip(command: str, cfg, budget: str | None) -> list[str]:
    argv = cli_args.config_argv(command, cfg, budget)
    back = parsed_back(command, argv)
    assert back == cfg, (command, argv)
    assert json.dumps(back.to_json(), sort_keys=True) == json.dumps(cfg.to_json(), sort_keys=True)  # the same store key
    return argv


def test_the_cli_builds_every_command_and_budget():
    assert set(cli_args.CONFIG_COMMANDS) == set(BUILD) and set(budgets.NAMES) == {"quick", "paper"}


@pytest.mark.parametrize("budget", budgets.NAMES)
@pytest.mark.parametrize("command", cli_args.CONFIG_COMMANDS)
def test_the_defaults_round_trip_in_the_fewest_flags(command, budget):
    """A config at the budget's defaults is ``--budget B`` alone (nothing for paper), and parses back to itself."""
    cfg = cli_args.config_of(command, budget)
    argv = assert_round_trip(command, cfg, budget)
    assert argv == ([] if budget == budgets.DEFAULT else ["--budget", budget])
    assert cli_args.config_argv(command, cfg, None if budget == budgets.DEFAULT else budget) == argv


def test_the_cli_defaults_are_the_configs_defaults():
    """No default is written twice: without flags the CLI builds the config classes' own defaults."""
    assert cli_args.config_of("tune") == cli_args.config_of("export") == PTConfig()
    assert cli_args.config_of("ipt") == cli_args.config_of("stability") == IPTSettings()
    assert cli_args.config_of("ist") == ISTConfig()
    # one step budget (steps, rows, dev interval) for every method of a comparison
    pt = PTConfig()
    assert cli_args.config_of("compare") == CompareSettings().with_budget(steps=pt.steps, batch_size=pt.batch_size,
                                                                          eval_every=pt.eval_every)
    quick = budgets.flag_defaults("quick", "ipt")
    q = cli_args.config_of("ipt", "quick")
    assert (q.pt.steps, q.pt.batch_size, q.pt.eval_every, q.msf.steps, q.ist.steps) == (
        quick["steps"], quick["batch_size"], quick["eval_every"], quick["msf_steps"], quick["ist_steps"])


def test_flags_a_command_lacks_are_refused_by_name():
    vip = CompareSettings().vip
    cfg = cli_args.config_of("compare")
    with pytest.raises(ValueError, match=r"cannot express vip\.ctx_dim = 64 \(its flags give 32\)"):
        cli_args.compare_argv(replace(cfg, vip=replace(vip, ctx_dim=64, steps=cfg.vip.steps)))
    with pytest.raises(ValueError, match=r"argument --init: invalid choice: 'prompt'"):
        cli_args.pt_argv(PTConfig(init="prompt"))
    with pytest.raises(ValueError, match=r"cannot express msf\.batch_size"):
        cli_args.ipt_argv(IPTSettings(msf=MSFConfig(batch_size=8)))
    with pytest.raises(ValueError, match="argument --init-text: the value '--' cannot be given on a command line"):
        cli_args.pt_argv(PTConfig(init="text", init_text="--"))
    with pytest.raises(TypeError, match="builds a PTConfig, not a ISTConfig"):
        cli_args.pt_argv(ISTConfig())
    with pytest.raises(TypeError, match="tune has no flag 'msf_lr'"):
        cli_args.config_of("tune", msf_lr=0.1)
    with pytest.raises(ValueError, match="budget must be one of"):
        cli_args.config_of("tune", "fast")


def test_a_flag_that_moves_another_field_is_undone():
    """compare's --steps moves subspace finding's steps on the paper budget: a config that keeps MSF's gets --msf-steps."""
    cfg = cli_args.config_of("compare", steps=5)
    assert cfg.msf.steps == 5 and cli_args.compare_argv(cfg) == ["--steps", "5"]
    kept = replace(cfg, msf=replace(cfg.msf, steps=300))
    assert assert_round_trip("compare", kept, None) == ["--steps", "5", "--msf-steps", "300"]
    quick = cli_args.config_of("compare", "quick", steps=5)  # quick keeps its own MSF steps
    assert quick.msf.steps == budgets.flag_defaults("quick", "compare")["msf_steps"]
    assert assert_round_trip("compare", quick, "quick") == ["--steps", "5", "--budget", "quick"]


# random configs: every flagged field over its limit's range (a sample of the extremes and the middle)
def in_range(name: str) -> st.SearchStrategy:
    lim = limits.limit(name)
    if lim.kind is int:
        vals = st.integers(int(lim.lo) + lim.lo_open, int(lim.hi) - lim.hi_open)
    else:
        vals = st.floats(lim.lo, lim.hi, exclude_min=lim.lo_open, exclude_max=lim.hi_open, allow_nan=False)
    return vals | st.none() if lim.optional else vals


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A field's value, or its default (half the time: a sparse config is the common case)."""
    return st.none() | strategy.map(lambda v: (v,))


# an --init-text: any text but "--" (argparse drops it: refused above)
TEXTS_ON_A_COMMAND_LINE = (st.text(min_size=1, max_size=12) | st.sampled_from(["-x", "--lr", "-", "---", "none", " a b", "a=b"])
                           ).filter(lambda t: t != "--")


@st.composite
def pt_configs(draw, base: PTConfig) -> PTConfig:
    change = {f: draw(maybe(in_range(name))) for f, name in (
        ("steps", "steps"), ("batch_size", "batch_size"), ("eval_every", "eval_every"), ("lr", "lr"),
        ("n_tokens", "n_tokens"), ("patience", "patience"), ("max_grad_norm", "max_grad_norm"))}
    change["kind"] = draw(maybe(st.sampled_from(PROMPT_KINDS)))
    change["init"] = draw(maybe(st.sampled_from(STANDALONE_INITS)))
    change["init_text"] = draw(maybe(TEXTS_ON_A_COMMAND_LINE))
    change = {k: v[0] for k, v in change.items() if v is not None}
    if change.get("init", base.init) == "text" and not change.get("init_text", base.init_text):
        change["init_text"] = "start"  # init text needs its text
    return replace(base, **change)


@st.composite
def ipt_settings(draw, base: IPTSettings) -> IPTSettings:
    msf = {f: draw(maybe(in_range(name))) for f, name in (("steps", "msf_steps"), ("lr", "msf_lr"), ("alpha", "alpha"),
                                                          ("hidden", "hidden"))}
    msf["norm"] = draw(maybe(st.sampled_from(NORMS)))
    msf["task_loss"] = draw(maybe(st.booleans()))
    ist = {f: draw(maybe(in_range(name))) for f, name in (("steps", "ist_steps"), ("lr", "ist_lr"))}
    pick = lambda d: {k: v[0] for k, v in d.items() if v is not None}  # noqa: E731
    return replace(base, pt=draw(pt_configs(base.pt)), msf=replace(base.msf, **pick(msf)), ist=replace(base.ist, **pick(ist)),
                   subspaces=("found",) + tuple(draw(st.lists(st.sampled_from(SUBSPACES[1:]), unique=True))))


@st.composite
def compare_flags(draw) -> dict:
    """Values for compare's flags (by dest): the comparison's settings are what the CLI builds of them."""
    names = {"steps": "steps", "batch_size": "batch_size", "eval_every": "eval_every", "lr": "lr", "prompt_len": "n_tokens",
             "patience": "patience", "max_grad_norm": "max_grad_norm", "d": "d_intrinsic", "msf_steps": "msf_steps",
             "ist_lr": "ist_lr", "attempt_lr": "attempt_lr", "attempt_temperature": "temperature",
             "attempt_attn_lr_scale": "attn_lr_scale", "vip_lr": "vip_lr", "codebook_size": "codebook_size",
             "vip_samples": "num_samples", "vip_dead_code_threshold": "dead_code_threshold"}
    out = {dest: draw(maybe(in_range(name))) for dest, name in names.items()}
    out |= {"prompt_kind": draw(maybe(st.sampled_from(PROMPT_KINDS))), "vip_eval": draw(maybe(st.sampled_from(EVAL_MODES))),
            "init": draw(maybe(st.sampled_from(STANDALONE_INITS))), "attempt_paper_temperature": draw(maybe(st.booleans())),
            "attempt_pool_padding": draw(maybe(st.booleans())), "attempt_frozen_layernorm": draw(maybe(st.booleans()))}
    out = {k: v[0] for k, v in out.items() if v is not None}
    if out.get("init") == "text":
        out["init_text"] = draw(TEXTS_ON_A_COMMAND_LINE)
    return out


ROUND_TRIPS = settings(max_examples=int(os.environ.get("IPT_ROUND_TRIP_EXAMPLES", "60")), deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIPS
@given(data=st.data(), budget=st.sampled_from(budgets.NAMES), command=st.sampled_from(["tune", "export"]))
def test_random_pt_configs_round_trip(data, budget, command):
    assert_round_trip(command, data.draw(pt_configs(cli_args.config_of(command, budget))), budget)


@ROUND_TRIPS
@given(data=st.data(), budget=st.sampled_from(budgets.NAMES), command=st.sampled_from(["ipt", "stability"]))
def test_random_ipt_settings_round_trip(data, budget, command):
    assert_round_trip(command, data.draw(ipt_settings(cli_args.config_of(command, budget))), budget)


@ROUND_TRIPS
@given(steps=maybe(in_range("ist_steps")), lr=maybe(in_range("ist_lr")), budget=st.sampled_from(budgets.NAMES))
def test_random_ist_configs_round_trip(steps, lr, budget):
    base = cli_args.config_of("ist", budget)
    assert_round_trip("ist", replace(base, steps=(steps or (base.steps,))[0], lr=(lr or (base.lr,))[0]), budget)


@ROUND_TRIPS
@given(flags=compare_flags(), budget=st.sampled_from(budgets.NAMES))
def test_random_compare_settings_round_trip(flags, budget):
    cfg = cli_args.config_of("compare", budget, **flags)
    assert_round_trip("compare", cfg, budget)
    assert cli_args.config_of("compare", budget, **flags) == cfg  # config_of is a function of its flags


# what the forms show: their widgets' values (over the widgets' ranges) -> the config -> the argv they queue


@ROUND_TRIPS
@given(budget=st.sampled_from(budgets.NAMES), steps=in_range("steps"), eval_every=in_range("eval_every"),
       kind=st.sampled_from(PROMPT_KINDS), n_tokens=st.integers(**{k: v for k, v in limits.widget_kwargs("n_tokens", at_most=256).items() if k != "step"}),
       lr=st.floats(limits.widget_kwargs("lr", at_least=1e-5)["min_value"], limits.widget_kwargs("lr")["max_value"]),
       batch_size=st.integers(1, 4096))
def test_the_tune_forms_config_round_trips(budget, steps, eval_every, kind, n_tokens, lr, batch_size):
    cfg = tune_form_config(budget, steps=steps, eval_every=eval_every, kind=kind, n_tokens=n_tokens, lr=lr,
                           batch_size=batch_size)
    assert (cfg.steps, cfg.eval_every, cfg.kind, cfg.n_tokens, cfg.lr, cfg.batch_size) == (
        steps, eval_every, kind, n_tokens, lr, batch_size)
    assert_round_trip("tune", cfg, budget)


@ROUND_TRIPS
@given(budget=st.sampled_from(budgets.NAMES), steps=in_range("steps"))
def test_the_compare_and_ist_forms_configs_round_trip(budget, steps):
    cfg = compare_form_config(budget, steps=steps)
    assert {cfg.pt.steps, cfg.attempt.steps, cfg.vip.steps, cfg.ist.steps} == {steps}
    assert_round_trip("compare", cfg, budget)
    ist = ist_form_config(budget, steps=steps)
    assert ist.steps == steps
    assert_round_trip("ist", ist, budget)


@pytest.mark.parametrize("budget", budgets.NAMES)
@pytest.mark.parametrize("command", ["ipt", "stability"])
def test_the_ipt_and_stability_forms_config_round_trips(command, budget):
    cfg = ipt_form_config(command, budget)
    assert parsed_back(command, ipt_run_argv(command, budget)) == cfg == cli_args.config_of(command, budget)


# ------------------------------------------------------------------------------ the forms under AppTest


def _form_app(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _queued(at: AppTest, root: Path, label: str) -> jobs.Job:
    before = {j.id for j in jobs.list_jobs(root)}
    _button(at, label).click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    [job] = [j for j in jobs.list_jobs(root) if j.id not in before]
    assert cli.refusal(list(job.argv)) is None, job.argv
    return job


def _budget(at: AppTest) -> str:
    try:
        gpu = at.session_state["ctx_gpu_name"]
    except KeyError:
        gpu = None
    return "paper" if gpu else "quick"


def test_the_tune_form_queues_the_config_it_shows(store_root):
    """The form opens on the CLI's defaults for the machine; its job's argv parses back to its widgets' config."""
    at = _form_app("prompt_tuning")
    budget = _budget(at)
    num = lambda name: at.number_input(key=f"pt-tune-{name}")  # noqa: E731
    base = cli_args.config_of("tune", budget)
    assert (num("steps").value, num("eval").value, num("len").value, num("lr").value, num("batch").value,
            at.selectbox(key="pt-tune-kind").value) == (base.steps, base.eval_every, base.n_tokens, base.lr,
                                                        base.batch_size, base.kind)
    assert num("seeds").value == PARSER.parse_args(["tune"]).seeds
    job = _queued(at, store_root, "Queue prompt tuning")  # the defaults: the budget alone
    assert parsed_back("tune", job.argv[1:]) == base
    assert job.argv[5:-3] == (() if budget == budgets.DEFAULT else ("--budget", budget))

    for name, value in (("steps", 7), ("eval", 3), ("len", 4), ("lr", 0.03), ("batch", 5), ("seeds", 2)):
        num(name).set_value(value)
    at.selectbox(key="pt-tune-kind").set_value("shallow")
    at.multiselect(key="pt-tune-tasks").set_value(["sms_spam"])
    at.run()
    shown = tune_form_config(budget, steps=num("steps").value, eval_every=num("eval").value,
                             kind=at.selectbox(key="pt-tune-kind").value, n_tokens=num("len").value, lr=num("lr").value,
                             batch_size=num("batch").value)
    assert (shown.steps, shown.eval_every, shown.kind, shown.n_tokens, shown.lr, shown.batch_size) == (7, 3, "shallow", 4, 0.03, 5)
    job = _queued(at, store_root, "Queue prompt tuning")
    args = PARSER.parse_args(list(job.argv))
    assert cli_args.pt_config(args) == shown and args.seeds == 2 and args.tasks == ["sms_spam"]


def test_the_compare_form_queues_the_config_it_shows(store_root):
    at = _form_app("methods")
    budget = _budget(at)
    assert at.number_input(key="meth-steps").value == cli_args.config_of("compare", budget).pt.steps
    at.multiselect(key="meth-tasks").set_value(["sms_spam", "movie_sentiment"])
    at.number_input(key="meth-steps").set_value(6)
    at.run()
    shown = compare_form_config(budget, steps=at.number_input(key="meth-steps").value)
    job = _queued(at, store_root, "Queue comparison")
    assert cli_args.compare_settings(PARSER.parse_args(list(job.argv))) == shown
    assert shown.pt.steps == shown.vip.steps == 6
