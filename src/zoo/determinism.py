"""Bit-identical CPU training: the one home of the settings that make it.

TensorFlow's CPU results depend on the machine unless told otherwise: oneDNN picks its kernels by
the instruction set it finds (AVX2, AVX-512, AMX...), XLA (which Keras 3 turns on by default,
``jit_compile="auto"``) compiles for the host CPU, and reductions split by thread count. The
``train`` stages and ``python -m src.zoo.train`` therefore pin them before TensorFlow runs, from
``train.determinism`` in ``params.yaml`` (every key optional; :data:`DEFAULTS` fills the rest)::

    train:
      determinism:
        onednn: false           # TF_ENABLE_ONEDNN_OPTS: oneDNN's CPU-dependent kernels
        op_determinism: true    # tf.config.experimental.enable_op_determinism()
        xla: false              # Keras jit_compile and XLA auto-clustering
        intra_op_threads: 1     # threads inside one op (0: TensorFlow's choice, per machine)
        inter_op_threads: 1     # ops run side by side

What was applied, with the TensorFlow version, goes into the lineage (:func:`record`): the
card's ``training`` field and the MLflow run's tags.

Not pinned yet: two CPU models (the previous development machine, and a Xeon with AVX-512 and AMX)
trained ``digits-cnn`` to different weights with every setting on, and capping oneDNN's
instruction set (``ONEDNN_MAX_CPU_ISA``) did not change it; a suspect is the GEMM blocking chosen
from the CPU's cache sizes. On one machine, training is bit-identical run after run.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from registry.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "onednn": False,
    "op_determinism": True,
    "xla": False,
    "intra_op_threads": 1,
    "inter_op_threads": 1,
}
_log = logging.getLogger("src.zoo.determinism")


def settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``train.determinism`` from ``params.yaml`` checked and completed with :data:`DEFAULTS`.

    Args:
        section: The mapping under ``train.determinism`` (``None``: all defaults).

    Returns:
        Every setting, in :data:`DEFAULTS`' order.

    Raises:
        ConfigError: For an unknown key, a non-boolean switch or a negative thread count.

    Example:
        >>> settings({"intra_op_threads": 4})["intra_op_threads"]
        4
    """
    section = dict(section or {})
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"train.determinism in params.yaml has unknown key(s) {', '.join(unknown)}; "
            f"the keys are {', '.join(DEFAULTS)}"
        )
    result = {**DEFAULTS, **{k: v for k, v in section.items() if v is not None}}
    for key, value in result.items():
        expected_bool = isinstance(DEFAULTS[key], bool)
        ok = (
            isinstance(value, bool)
            if expected_bool
            else isinstance(value, int) and not isinstance(value, bool) and value >= 0
        )
        if not ok:
            kind = "true or false" if expected_bool else "a whole number >= 0"
            raise ConfigError(
                f"train.determinism.{key} in params.yaml must be {kind}, not {value!r}"
            )
    return result


def _set_environment(chosen: Mapping[str, Any]) -> bool:
    """Set what TensorFlow reads from the environment at import; return whether oneDNN is on
    (as the environment had it if TensorFlow was imported already: then it is too late)."""
    onednn = "1" if chosen["onednn"] else "0"
    if "tensorflow" in sys.modules:
        effective = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"  # TF's x86 default: on
        if effective != chosen["onednn"]:
            _log.warning(
                "TensorFlow was imported before the determinism settings, so "
                f"TF_ENABLE_ONEDNN_OPTS={onednn} cannot take effect in this process; the "
                "weights may differ between machines"
            )
        return effective
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = onednn
    if chosen["op_determinism"]:
        os.environ["TF_DETERMINISTIC_OPS"] = "1"
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if not chosen["xla"] and "--tf_xla_auto_jit" not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_auto_jit=0".strip()
    return bool(chosen["onednn"])


def _set_threads(intra: int, inter: int) -> tuple[int, int]:
    """Pin TensorFlow's thread pools and return the counts in effect: they can change only
    before its runtime starts (later, in a process that already ran TensorFlow, a warning)."""
    import tensorflow as tf

    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as e:
        _log.warning(
            f"TensorFlow's runtime already started, so its thread counts stay as they are "
            f"({e}); the weights may differ between machines"
        )
    return (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )


def configure(section: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply the determinism settings to this process; call it before importing TensorFlow.

    Sets the environment TensorFlow reads at import (oneDNN, deterministic ops, XLA
    auto-clustering), then imports it and sets op determinism, the thread pools and (with
    ``xla: false``) the XLA JIT switch off; ``xla: true`` leaves XLA to TensorFlow and Keras. In a
    process where TensorFlow already ran (a notebook, a test), oneDNN and the thread counts can no
    longer change: a warning says so, and the result says what is in effect.

    Args:
        section: ``train.determinism`` from ``params.yaml`` (``None``: the defaults).

    Returns:
        The settings in effect plus ``tensorflow`` (its version): what :func:`record` writes.

    Raises:
        ConfigError: For a bad setting.

    Example:
        >>> applied = configure({"intra_op_threads": 1})  # doctest: +SKIP
        >>> applied["tensorflow"]  # doctest: +SKIP
        '2.21.0'
    """
    chosen = settings(section)
    onednn = _set_environment(chosen)
    import tensorflow as tf

    if chosen["op_determinism"]:
        tf.config.experimental.enable_op_determinism()
    if not chosen["xla"]:
        tf.config.optimizer.set_jit(False)
    intra, inter = _set_threads(int(chosen["intra_op_threads"]), int(chosen["inter_op_threads"]))
    return {
        **chosen,
        "onednn": onednn,
        "intra_op_threads": intra,
        "inter_op_threads": inter,
        "tensorflow": tf.__version__,
    }


def jit_compile(applied: Mapping[str, Any] | None) -> bool | str:
    """Keras ``compile``'s ``jit_compile`` for the applied settings (``"auto"``: Keras' own)."""
    return "auto" if applied is None or applied.get("xla") else False


def record(applied: Mapping[str, Any]) -> dict[str, Any]:
    """The card's ``training`` field: the TensorFlow version and the determinism settings."""
    return {
        "tensorflow": applied["tensorflow"],
        "determinism": {k: applied[k] for k in DEFAULTS},
    }
