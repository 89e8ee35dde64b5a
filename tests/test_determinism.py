"""Training is pinned to machine-independent TensorFlow settings (``src/zoo/determinism.py``).

oneDNN off, op determinism on, XLA off and fixed thread counts, from ``train.determinism`` in
``params.yaml``, set before TensorFlow is imported and recorded in the card's ``training`` field.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from registry.errors import ConfigError
from src.zoo import determinism
from tests.conftest import PROJECT_ROOT


def test_missing_settings_take_the_defaults() -> None:
    assert determinism.settings(None) == determinism.DEFAULTS
    assert determinism.settings({"intra_op_threads": 4, "xla": None}) == {
        **determinism.DEFAULTS,
        "intra_op_threads": 4,
    }


def test_params_yaml_states_every_setting_at_its_default() -> None:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    assert params["train"]["determinism"] == determinism.DEFAULTS


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"threads": 2}, "train.determinism in params.yaml has unknown key(s) threads; the keys"),
        (
            {"onednn": "no"},
            "train.determinism.onednn in params.yaml must be true or false, not 'no'",
        ),
        ({"intra_op_threads": -1}, "intra_op_threads in params.yaml must be a whole number >= 0"),
        ({"inter_op_threads": True}, "inter_op_threads in params.yaml must be a whole number >= 0"),
    ],
)
def test_a_bad_setting_is_a_config_error(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        determinism.settings(section)
    assert message in str(caught.value)


def test_the_training_command_refuses_a_bad_setting_in_params_yaml(
    tmp_path: Path, chdir: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    from src.zoo import train

    (tmp_path / "params.yaml").write_text("train:\n  determinism:\n    xla: maybe\n")
    chdir(tmp_path)
    assert train.main(["digits-cnn"]) == ConfigError.exit_code
    assert capsys.readouterr().err == (
        "error: train.determinism.xla in params.yaml must be true or false, not 'maybe'\n"
    )


def test_configure_sets_tensorflow_up_before_its_import() -> None:
    # A fresh process, as a dvc stage is: the environment must be set before the import.
    script = (
        "import json, os, sys\n"
        "from src.zoo import determinism\n"
        "assert 'tensorflow' not in sys.modules\n"
        "applied = determinism.configure({'inter_op_threads': 2})\n"
        "import tensorflow as tf\n"
        "print(json.dumps({'applied': applied, 'onednn': os.environ['TF_ENABLE_ONEDNN_OPTS'],\n"
        "  'xla': os.environ['TF_XLA_FLAGS'], 'det': os.environ['TF_DETERMINISTIC_OPS'],\n"
        "  'intra': tf.config.threading.get_intra_op_parallelism_threads(),\n"
        "  'inter': tf.config.threading.get_inter_op_parallelism_threads(),\n"
        "  'jit': tf.config.optimizer.get_jit(), 'record': determinism.record(applied)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert (seen["onednn"], seen["det"], seen["xla"]) == ("0", "1", "--tf_xla_auto_jit=0")
    assert (seen["intra"], seen["inter"]) == (1, 2)
    assert not seen["jit"]
    import tensorflow as tf

    assert seen["record"] == {
        "tensorflow": tf.__version__,
        "determinism": {**determinism.DEFAULTS, "inter_op_threads": 2},
    }
    assert determinism.jit_compile(seen["applied"]) is False


def test_the_committed_cards_record_how_they_were_trained() -> None:
    import tensorflow as tf

    from registry.cards import parse_card

    for name in ("digits-cnn", "digits-parity"):
        card = parse_card((PROJECT_ROOT / "models" / name / "README.md").read_text())
        assert card.get("training") == {
            "tensorflow": tf.__version__,
            "determinism": determinism.DEFAULTS,
        }, name
