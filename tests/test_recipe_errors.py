"""Recipe mistakes that used to pass in silence: a key given twice, a run name that leaves
``--out``, a bool or a string where a number belongs, a metric key that no metric produces.

Each is refused with one message that says what, where and what to do, exit code 2, before
anything runs: every file in the user's folder stays as it was, and no run folder appears.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ganlab.errors import GanlabError
from ganlab.plugin_manager.loading import load_plugins
from tests.conftest import RECIPES, invoke, tiny_recipe, write_jpegs, write_recipe


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file under ``folder`` with its bytes, and every folder (None)."""
    return {str(p): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def finished_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's folder, made once: images, a working recipe and a finished run under runs/."""
    folder = tmp_path_factory.mktemp("workspace")
    write_jpegs(folder / "images", 8, (24, 24))
    write_recipe(folder / "recipe.yaml", tiny_recipe(folder / "images"))
    result = invoke("run", str(folder / "recipe.yaml"), "--out", str(folder / "runs"))
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def ws(finished_workspace: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished workspace for one test."""
    return Path(shutil.copytree(finished_workspace, tmp_path / "ws"))


def refused(ws: Path, *args: str) -> str:
    """Run ``ganlab ARGS`` (``run`` with ``--out ws/runs``): exit 2, one message, no
    traceback, nothing changed.

    Returns the message without its ``ganlab: error:`` prefix.
    """
    before = snapshot(ws)
    out = ["--out", str(ws / "runs")] if args[0] == "run" else []
    result = invoke(*args, *out)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("ganlab: error: ")
    assert result.output.count("ganlab: error: ") == 1 and "Traceback" not in result.output
    assert snapshot(ws) == before, "a refused recipe changed or created a file"
    return result.output.removeprefix("ganlab: error: ").strip()


def accepted(*args: str) -> dict:
    """``ganlab recipe show ARGS``: exit 0, the resolved recipe."""
    result = invoke("recipe", "show", *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


def write(ws: Path, name: str, text: str) -> str:
    path = ws / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return str(path)


#: A complete recipe as text (the images folder relative to the workspace), so that a test
#: can repeat one of its keys: YAML libraries cannot write a mapping with a key twice.
RECIPE_TEXT = """
    seed: 1
    device: cpu
    data:
      name: image_folder
      params: {{root: {root}, image_size: 16}}
    generator:
      name: dcgan
      params:
        nz: 16
        ngf: 8
    discriminator: {{name: dcgan, params: {{ndf: 8}}}}
    loss: {{name: bce}}
    train:
      steps: 3
      batch_size: 8
    callbacks:
      - name: console
        params: {{every: 1}}
"""


def recipe_text(ws: Path) -> str:
    return textwrap.dedent(RECIPE_TEXT).lstrip().format(root=ws / "images")


# --- a key given twice --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (  # at the top level
            lambda text: text.replace("device: cpu\n", "device: cpu\nseed: 2\n"),
            "3: seed appears twice (lines 1 and 3); keep one.",
        ),
        (  # in a section, after other keys
            lambda text: text.replace("  batch_size: 8\n", "  batch_size: 8\n  steps: 30\n"),
            "16: train.steps appears twice (lines 14 and 16); keep one.",
        ),
        (  # in a component's params
            lambda text: text.replace("    ngf: 8\n", "    ngf: 8\n    nz: 32\n"),
            "11: generator.params.nz appears twice (lines 9 and 11); keep one.",
        ),
        (  # in a flow mapping, on one line
            lambda text: text.replace("{ndf: 8}", "{ndf: 8, ndf: 16}"),
            "11: discriminator.params.ndf appears twice (line 11, columns 39 and 47); keep one.",
        ),
        (  # in an entry of a list
            lambda text: text.replace("{every: 1}", "{every: 1, every: 2}"),
            "18: callbacks.0.params.every appears twice (line 18, columns 14 and 24); keep one.",
        ),
        (  # a whole section twice
            lambda text: text + "loss: {name: hinge}\n",
            "19: loss appears twice (lines 12 and 19); keep one.",
        ),
    ],
)
def test_a_key_given_twice_in_the_file_is_refused_with_both_lines(
    ws: Path, edit: Callable[[str], str], message: str
) -> None:
    path = write(ws, "bad.yaml", edit(recipe_text(ws)))
    assert refused(ws, "run", path) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train={steps: 1, steps: 2}", "train.steps appears twice (columns 2 and 12); keep one."),
        (
            "callbacks=[{name: console}, {name: samples, params: {every: 1, every: 2}}]",
            "callbacks.1.params.every appears twice (columns 44 and 54); keep one.",
        ),
        (
            "generator.params={ngf: 8, nz: 16, ngf: 4}",
            "generator.params.ngf appears twice (columns 2 and 18); keep one.",
        ),
    ],
)
def test_a_key_given_twice_in_a_set_value_is_refused(ws: Path, override: str, message: str) -> None:
    out = refused(ws, "run", str(ws / "recipe.yaml"), "--set", override)
    assert out == f"--set {override!r}: {message}"


def test_a_key_twice_is_refused_by_validate_too(ws: Path) -> None:
    path = write(ws, "bad.yaml", recipe_text(ws) + "seed: 5\n")
    out = refused(ws, "recipe", "validate", path)
    assert out == f"{path}:19: seed appears twice (lines 1 and 19); keep one."


def test_merge_keys_and_repeated_set_options_are_not_duplicates(ws: Path) -> None:
    """A key of a mapping overrides one merged into it (YAML's own rule), and a later
    ``--set`` of the same key wins: neither is a key written twice."""
    merged = recipe_text(ws).replace(
        "discriminator: {name: dcgan, params: {ndf: 8}}",
        "discriminator:\n  name: dcgan\n  params:\n    <<: {ndf: 8, norm: layer}\n    ndf: 16",
    )
    resolved = accepted(write(ws, "merged.yaml", merged), "--set", "seed=2", "--set", "seed=3")
    assert resolved["discriminator"]["params"]["ndf"] == 16
    assert resolved["discriminator"]["params"]["norm"] == "layer"
    assert resolved["seed"] == 3


# --- the run's name -----------------------------------------------------------------------

NAME_RULE = "a name holds 1 to 100 letters, digits, '_', '.' or '-' and does not start with '.'"


@pytest.mark.parametrize(
    "name", ["..", ".", ".hidden", "../escape", "a/b", "my run", "x" * 101, "", "runs\\x", "é"]
)
def test_a_name_that_is_not_one_safe_folder_name_is_refused(ws: Path, name: str) -> None:
    out = refused(ws, "run", str(ws / "recipe.yaml"), "--set", f"name='{name}'")
    assert out == (
        f"{ws / 'recipe.yaml'}: name: not a safe name for the run's folder; {NAME_RULE} "
        f"(got {name!r})."
    )


@pytest.mark.parametrize("name", ["..", "my run"])
def test_a_bad_name_in_the_file_is_refused(ws: Path, name: str) -> None:
    text = f"name: '{name}'\n" + recipe_text(ws)
    path = write(ws, "named.yaml", text)
    assert f"name: not a safe name for the run's folder; {NAME_RULE} (got {name!r})." in (
        refused(ws, "run", path)
    )


@pytest.mark.parametrize(
    ("filename", "stem", "suggestion"),
    [
        ("my recipe.yaml", "my recipe", "my_recipe"),
        ("..yaml", ".", "my_recipe"),
        (".hidden.yaml", ".hidden", "hidden"),
        ("über.yaml", "über", "_ber"),
    ],
)
def test_a_name_from_an_unsafe_file_name_says_where_it_came_from(
    ws: Path, filename: str, stem: str, suggestion: str
) -> None:
    path = write(ws, filename, recipe_text(ws))
    assert refused(ws, "run", path) == (
        f"{path}: name: not set, so it comes from the file name, {stem!r}, which is not a "
        f"safe name for the run's folder ({NAME_RULE}). Rename the file (e.g. "
        f"{suggestion}.yaml) or set a name in it (e.g. name: {suggestion})."
    )


def test_a_file_with_an_unsafe_name_runs_once_it_names_itself(ws: Path) -> None:
    path = write(ws, "my recipe.yaml", recipe_text(ws))
    assert accepted(path, "--set", "name=my_recipe")["name"] == "my_recipe"
    named = write(ws, "..yaml", "name: fine\n" + recipe_text(ws))
    assert accepted(named)["name"] == "fine"
    assert accepted(str(ws / "recipe.yaml"), "--set", f"name={'x' * 100}")["name"] == "x" * 100
    assert accepted(str(ws / "recipe.yaml"), "--set", "name=run-1.v2_b")["name"] == "run-1.v2_b"


# --- numbers are strict -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "train.steps=true",
            "train.steps: Input should be a valid integer (got True); write a whole number, "
            "not true or false.",
        ),
        (
            'train.steps="3"',
            "train.steps: Input should be a valid integer (got '3'); write 3 without quotes.",
        ),
        (
            "train.steps=3.0",
            "train.steps: Input should be a valid integer (got 3.0); write 3, without a "
            "decimal point.",
        ),
        (
            "train.steps=2.5",
            "train.steps: Input should be a valid integer (got 2.5); this key takes a whole "
            "number.",
        ),
        ("train.epochs=false", "train.epochs: Input should be a valid integer (got False)"),
        ("train.eval_every=true", "train.eval_every: Input should be a valid integer (got True)"),
        ("seed=true", "seed: Input should be a valid integer (got True)"),
        ("train.batch_size=1e1", "train.batch_size: Input should be a valid integer (got 10.0)"),
        (
            "optimizers.generator.lr=true",
            "optimizers.generator.lr: Input should be a valid number (got True); write a "
            "number, not true or false.",
        ),
        (
            'optimizers.discriminator.weight_decay="0.1"',
            "optimizers.discriminator.weight_decay: Input should be a valid number (got '0.1'); "
            "write 0.1 without quotes.",
        ),
        ("train.ema=true", "train.ema: Input should be a valid number (got True)"),
        (
            "optimizers.generator.betas=[0.5, true]",
            "optimizers.generator.betas.1: Input should be a valid number (got True)",
        ),
        (
            "optimizers.generator.betas=['0.5', 0.9]",
            "optimizers.generator.betas.0: Input should be a valid number (got '0.5')",
        ),
        (
            "train.compile=1",
            "train.compile: Input should be a valid boolean (got 1); write true or false.",
        ),
        (
            "train.channels_last='yes'",
            "train.channels_last: Input should be a valid boolean (got 'yes'); write true or "
            "false without quotes.",
        ),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_in_the_recipe(
    ws: Path, override: str, line: str
) -> None:
    out = refused(ws, "run", str(ws / "recipe.yaml"), "--set", override)
    assert f"{ws / 'recipe.yaml'}: {line}" in out


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("generator.params.ngf=true", "generator.params.ngf: Input should be a valid integer"),
        ("generator.params.nz='16'", "generator.params.nz: Input should be a valid integer"),
        ("data.params.image_size=16.0", "data.params.image_size: Input should be a valid integer"),
        ("callbacks.0.params.every=false", "callbacks.0.params.every: Input should be a valid"),
        ("loss.params.real_label=true", "loss.params.real_label: Input should be a valid number"),
        (
            "discriminator.params.spectral_norm=0",
            "discriminator.params.spectral_norm: Input should be a valid boolean (got 0)",
        ),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_in_component_params(
    ws: Path, override: str, line: str
) -> None:
    out = refused(ws, "run", str(ws / "recipe.yaml"), "--set", override)
    assert f"{ws / 'recipe.yaml'}: {line}" in out


def test_a_bool_for_an_int_in_the_file_is_refused(ws: Path) -> None:
    text = recipe_text(ws).replace("steps: 3", "steps: true")
    path = write(ws, "bad.yaml", text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "steps: true" in row)
    assert refused(ws, "run", path) == (
        f"{path}:{line}: train.steps: Input should be a valid integer (got True); write a whole "
        "number, not true or false."
    )


PLUGIN_PARAMS = """
    from pydantic import BaseModel, Field

    import ganlab


    class Inner(ganlab.Params):
        depth: int = 1


    class Plain(BaseModel):
        model_config = {"extra": "forbid"}
        depth: int = 1


    class KnobsParams(ganlab.Params):
        count: int = 1
        size: int | None = None
        scale: float = 1.0
        pair: tuple[int, int] = (1, 2)
        weights: list[float] = Field(default_factory=list)
        sizes: dict[str, int] = Field(default_factory=dict)
        inner: Inner = Field(default_factory=Inner)
        plain: Plain = Field(default_factory=Plain)


    class Knobs:
        pass


    def build_knobs(params: KnobsParams) -> Knobs:
        '''Does nothing; has params of every shape.'''
        return Knobs()


    @ganlab.hookimpl
    def ganlab_register_callbacks(register):
        register("knobs", build_knobs, params=KnobsParams)
"""


@pytest.mark.parametrize(
    ("params", "line"),
    [
        ("{count: true}", "callbacks.0.params.count: Input should be a valid integer (got True)"),
        ("{size: true}", "callbacks.0.params.size: Input should be a valid integer (got True)"),
        ("{size: 2.0}", "callbacks.0.params.size: Input should be a valid integer (got 2.0)"),
        ("{scale: false}", "callbacks.0.params.scale: Input should be a valid number (got False)"),
        ("{scale: '2'}", "callbacks.0.params.scale: Input should be a valid number (got '2')"),
        ("{pair: [1, true]}", "callbacks.0.params.pair.1: Input should be a valid integer"),
        ("{weights: [0.5, true]}", "callbacks.0.params.weights.1: Input should be a valid number"),
        ("{sizes: {a: '3'}}", "callbacks.0.params.sizes.a: Input should be a valid integer"),
        ("{inner: {depth: true}}", "callbacks.0.params.inner.depth: Input should be a valid int"),
    ],
)
def test_a_plugins_params_get_strict_numbers_from_ganlab_params(
    ws: Path, params: str, line: str
) -> None:
    plugin = write(ws, "knobs.py", PLUGIN_PARAMS)
    out = refused(
        ws,
        "run",
        str(ws / "recipe.yaml"),
        "-p",
        plugin,
        "--set",
        f"callbacks=[{{name: knobs, params: {params}}}]",
    )
    assert f"{ws / 'recipe.yaml'}: {line}" in out


def test_numbers_of_the_right_kind_are_accepted(ws: Path) -> None:
    """A float takes an int and 1e-4; lists and tuples still come from YAML lists; a model
    nested in a params field that is not a ganlab.Params keeps pydantic's own rules."""
    plugin = write(ws, "knobs.py", PLUGIN_PARAMS)
    knobs = "{scale: 2, pair: [3, 4], weights: [1, 0.5], sizes: {a: 3}, plain: {depth: true}}"
    resolved = accepted(
        str(ws / "recipe.yaml"),
        "-p",
        plugin,
        "--set",
        "optimizers.generator.lr=1",
        "--set",
        "optimizers.discriminator.lr=1e-4",
        "--set",
        "optimizers.generator.betas=[0, 0.9]",
        "--set",
        f"callbacks=[{{name: knobs, params: {knobs}}}]",
    )
    assert resolved["optimizers"]["generator"]["lr"] == 1.0
    assert resolved["optimizers"]["discriminator"]["lr"] == 1e-4
    assert resolved["optimizers"]["generator"]["betas"] == [0.0, 0.9]
    params = resolved["callbacks"][0]["params"]
    assert params["scale"] == 2.0 and params["pair"] == [3, 4] and params["weights"] == [1.0, 0.5]
    assert params["plain"] == {"depth": 1}


def test_a_float_written_1e5_reads_as_a_float_and_a_quoted_one_stays_a_string(ws: Path) -> None:
    text = recipe_text(ws).replace("seed: 1\n", "seed: 1\nname: '1e5'\n")
    text += "optimizers:\n  generator: {lr: 2E-4}\n"
    path = write(ws, "r.yaml", text)
    resolved = accepted(path)
    assert resolved["name"] == "1e5" and resolved["optimizers"]["generator"]["lr"] == 2e-4
    # The resolved recipe reads back as itself: "1e5" stays a string.
    shown = invoke("recipe", "show", path).output
    assert accepted(write(ws, "again.yaml", shown)) == resolved


# --- metric keys --------------------------------------------------------------------------

QUICKSTART = str(RECIPES / "quickstart.yaml")


def test_best_on_a_key_no_metric_produces_is_refused(ws: Path) -> None:
    out = refused(ws, "run", QUICKSTART, "--set", "callbacks.3.params.metric=stat_12")
    assert out == (
        f"{QUICKSTART}: callbacks.3.params.metric: no metric of the recipe produces the key "
        "'stat_12', so it would never get a value. The recipe's metrics produce: swd, swd_*. "
        "Name one of these, or add a metric that produces it to `metrics:`."
    )


def test_best_in_a_recipe_without_metrics_is_refused(ws: Path) -> None:
    out = refused(ws, "run", QUICKSTART, "--set", "metrics=[]")
    assert out == (
        # the file's line that names the key (the --set that emptied metrics is elsewhere)
        f"{QUICKSTART}:39: callbacks.3.params.metric: names the metric key 'swd', but the recipe "
        "has no metrics, so it would never get a value. Add the metric {name: swd} to "
        "`metrics:`, or remove callbacks.3 from the recipe."
    )


def test_a_key_of_another_metric_names_that_metric(ws: Path) -> None:
    out = refused(
        ws,
        "recipe",
        "validate",
        QUICKSTART,
        "--set",
        "metrics=[{name: fid}]",
        "--set",
        "callbacks.3.params.metric=kid_std",
    )
    assert "no metric of the recipe produces the key 'kid_std'" in out
    assert "The recipe's metrics produce: fid." in out
    assert "add the metric {name: kid} to `metrics:`" in out


def test_a_near_miss_gets_a_suggestion(ws: Path) -> None:
    out = refused(ws, "run", QUICKSTART, "--set", "callbacks.3.params.metric=swdd")
    assert 'Did you mean "swd"?' in out


@pytest.mark.parametrize(
    ("metrics", "key"),
    [
        ("[{name: swd}]", "swd"),
        ("[{name: swd}]", "swd_16"),  # one pyramid level: swd declares swd_*
        ("[{name: swd}, {name: kid}]", "kid_std"),
        ("[{name: fid}, {name: swd}]", "fid"),
    ],
)
def test_keys_the_metrics_produce_are_accepted(metrics: str, key: str) -> None:
    resolved = accepted(
        QUICKSTART, "--set", f"metrics={metrics}", "--set", f"callbacks.3.params.metric={key}"
    )
    assert resolved["callbacks"][3]["params"]["metric"] == key


WATCHER = """
    from pydantic import Field

    import ganlab


    class WatchParams(ganlab.Params):
        key: ganlab.MetricKey | None = None
        keys: list[ganlab.MetricKey] = Field(default_factory=list)
        pair: tuple[ganlab.MetricKey, int] = ("swd", 1)
        by_name: dict[str, ganlab.MetricKey] = Field(default_factory=dict)


    class Watch:
        pass


    def build_watch(params: WatchParams) -> Watch:
        '''Watches metric keys.'''
        return Watch()


    @ganlab.hookimpl
    def ganlab_register_callbacks(register):
        register("watch", build_watch, params=WatchParams)


    class StatParams(ganlab.Params):
        prefix: str = "stat"


    def build_stat(params: StatParams):
        '''A metric whose keys depend on its params.'''
        return lambda run: {params.prefix + "_mean": 0.0}


    def build_legacy(params: ganlab.NoParams):
        '''A metric that does not say what it produces.'''
        return lambda run: {"anything": 0.0}


    @ganlab.hookimpl
    def ganlab_register_metrics(register):
        register("stat", build_stat, params=StatParams, results=lambda p: (p.prefix + "_mean",))
        register("legacy", build_legacy)
"""


@pytest.mark.parametrize(
    ("params", "place", "key"),
    [
        ("{key: fid}", "key", "fid"),
        ("{keys: [swd, swd_32, stat_12]}", "keys.2", "stat_12"),
        ("{pair: [kid, 3]}", "pair.0", "kid"),
        ("{by_name: {a: swd, b: nope}}", "by_name.b", "nope"),
    ],
)
def test_a_plugin_param_typed_metric_key_is_checked(
    ws: Path, params: str, place: str, key: str
) -> None:
    plugin = write(ws, "watch.py", WATCHER)
    out = refused(
        ws,
        "run",
        QUICKSTART,
        "-p",
        plugin,
        "--set",
        f"callbacks=[{{name: watch, params: {params}}}]",
    )
    assert out == (
        f"{QUICKSTART}: callbacks.0.params.{place}: no metric of the recipe produces the key "
        f"{key!r}, so it would never get a value. The recipe's metrics produce: swd, swd_*. "
        f"Name one of these, or add {_adding(key)} to `metrics:`."
    )


def _adding(key: str) -> str:
    return {"fid": "the metric {name: fid}", "kid": "the metric {name: kid}"}.get(
        key, "a metric that produces it"
    )


def test_a_metric_key_param_names_the_default_too(ws: Path) -> None:
    """The default of a MetricKey field counts: `pair` defaults to ("swd", 1)."""
    plugin = write(ws, "watch.py", WATCHER)
    watch = "callbacks=[{name: watch}]"
    out = refused(ws, "run", QUICKSTART, "-p", plugin, "--set", "metrics=[]", "--set", watch)
    assert "callbacks.0.params.pair.0: names the metric key 'swd', but the recipe has no" in out


def test_keys_that_depend_on_params_and_undeclared_metrics(ws: Path) -> None:
    plugin = write(ws, "watch.py", WATCHER)
    watch = "callbacks=[{name: watch, params: {key: lab_mean, pair: [lab_mean, 1]}}]"
    lab = "metrics=[{name: stat, params: {prefix: lab}}]"
    resolved = accepted(QUICKSTART, "-p", plugin, "--set", lab, "--set", watch)
    assert resolved["callbacks"][0]["params"]["key"] == "lab_mean"
    stat = "metrics=[{name: stat}]"
    out = refused(ws, "run", QUICKSTART, "-p", plugin, "--set", stat, "--set", watch)
    assert "The recipe's metrics produce: stat_mean." in out
    # A metric that declares nothing may produce any key: nothing is refused.
    legacy = "metrics=[{name: legacy}, {name: swd}]"
    best = "callbacks.3.params.metric=anything"
    loose = accepted(QUICKSTART, "-p", plugin, "--set", legacy, "--set", best)
    assert loose["callbacks"][3]["params"]["metric"] == "anything"


@pytest.mark.parametrize(
    ("registration", "message"),
    [
        (
            'register("m", lambda p: None, results="m")',
            "results must be a tuple of key names, e.g. results=(\"fid\",), got 'm'.",
        ),
        (
            'register("m", lambda p: None, results=("m", ""))',
            "results: every key must be a non-empty string, got ''.",
        ),
    ],
)
def test_a_metric_that_declares_its_keys_wrongly_is_refused(
    tmp_path: Path, registration: str, message: str
) -> None:
    (tmp_path / "m.py").write_text(
        "import ganlab\n\n@ganlab.hookimpl\ndef ganlab_register_metrics(register):\n"
        f"    {registration}\n"
    )
    with pytest.raises(GanlabError) as err:
        load_plugins([str(tmp_path / "m.py")])
    assert f"registers metric 'm': {message}" in str(err.value)


def test_results_on_a_component_that_is_not_a_metric_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.py").write_text(
        "import ganlab\n\n@ganlab.hookimpl\ndef ganlab_register_callbacks(register):\n"
        '    register("c", lambda p: None, results=("x",))\n'
    )
    with pytest.raises(GanlabError, match=r"registers callback 'c': results= is for metrics"):
        load_plugins([str(tmp_path / "c.py")])
