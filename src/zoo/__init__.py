"""The lab's example model zoo: small Keras models trained on registry datasets.

``src.zoo.models`` defines the networks, ``src.zoo.train`` trains them and writes the weights and
the card's metrics into ``models/<name>/`` (``python -m src.zoo.train --help``). Nothing here is
imported by ``import registry``; TensorFlow loads only when a model is built or trained.
"""
