"""TFDS example serialization that writes the same bytes in every process.

TFDS serializes each example as a ``tf.train.Example``, whose features are a protobuf map, with
``SerializeToString()``: protobuf writes map entries in hash-table order, and the table's hash
is seeded per process, so two builds of the same data (or two Beam workers) write different
bytes. The registry checks a rebuild against the released hash, so builds must be byte-for-byte
reproducible: this serializer asks protobuf for its deterministic (key-sorted) encoding.

The module is pickled by value to Beam workers (see
:func:`registry.build.builders.load_builder_module`) so that it needs no ``registry`` install there
(e.g. on Dataflow).
"""

from __future__ import annotations

from typing import Any

from tensorflow_datasets.core import example_serializer


class DeterministicExampleSerializer(example_serializer.ExampleSerializer):
    """An ``ExampleSerializer`` whose output depends only on the example."""

    def serialize_example(self, example: Any) -> Any:
        """Serialize ``example`` with map entries sorted by key."""
        return self.get_tf_example(example).SerializeToString(deterministic=True)
