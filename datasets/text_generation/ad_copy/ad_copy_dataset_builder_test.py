"""text_generation/ad_copy builds from its dummy data and from its grammar, cleaned.

The dummy data (``ads.jsonl`` and ``ads.csv``, 17 rows) holds one defect a row: an exact
duplicate, a re-scraped duplicate that only cleaning reveals (markup, entities, spacing, field
case), a shouted headline, entities and markup in a body, an empty body, a headline of markup
only, a keyword-stuffed body, an unknown category, a broken JSON line, selling points as one
``|`` string, no selling points, and a CSV duplicate of a JSONL row. Eight examples survive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from registry.testing import check_builder

SPLITS = ("train", "validation", "test")


def _examples(builder: Any) -> dict[str, list[dict[str, Any]]]:
    decoded: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        decoded[split] = []
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            decoded[split].append(
                {
                    key: value.decode("utf-8") if isinstance(value, bytes) else value
                    for key, value in example.items()
                }
            )
    return decoded


def _assert_clean(examples: dict[str, list[dict[str, Any]]], max_headline: int, max_body: int):
    products = {split: {e["product_name"] for e in rows} for split, rows in examples.items()}
    # Every copy of a product is in one split: no product leaks into evaluation.
    assert not products["train"] & (products["validation"] | products["test"])
    assert not products["validation"] & products["test"]
    targets = [e["target"] for rows in examples.values() for e in rows]
    assert len(targets) == len(set(targets))  # duplicates removed
    for rows in examples.values():
        for e in rows:
            for field in ("prompt", "product_name", "headline", "body"):
                text = e[field]
                assert text and text == " ".join(text.split()), (field, text)
                assert "<" not in text and "&" not in text.replace(" & ", ""), (field, text)
                assert "!!" not in text
            assert len(e["headline"]) <= max_headline and len(e["body"]) <= max_body
            assert e["headline"] != e["headline"].upper()  # no shouting left
            assert e["target"] == f"{e['headline']}\n\n{e['body']}"
            assert e["product_name"] in e["prompt"] and len(e["selling_points"]) >= 1


def test_builds_from_dummy_data(tmp_path: Path) -> None:
    builder = check_builder(
        __file__, expected_splits={"train": 4, "validation": 2, "test": 2}, data_dir=tmp_path
    )
    examples = _examples(builder)
    _assert_clean(examples, 120, 400)
    by_product = {e["product_name"]: e for rows in examples.values() for e in rows}
    assert set(by_product) == {
        "Nimbus One Earbuds", "Aurora Air Kettle", "Vela One Granola", "Lumen One Kite",
        "Orbit One Raincoat", "Tandem Pro Kite", "Orbit Pro Yoga Mat", "Juniper Air Kettle",
    }
    # Shouting undone, keeping the product name's and German nouns' capitals.
    assert by_product["Aurora Air Kettle"]["headline"] == "Last chance! Aurora Air Kettle is here"
    assert by_product["Orbit Pro Yoga Mat"]["headline"] == (
        "Exklusiv: Orbit Pro Yoga Mat – extra Grip"
    )
    # Entities decoded, markup stripped, French spacing before '!' kept.
    assert by_product["Vela One Granola"]["body"] == (
        "Vela One Granola vous offre une recette sans sucres ajoutés & une saveur intense. "
        "Allez, faites-vous plaisir !"
    )
    assert by_product["Lumen One Kite"]["body"].endswith("We think you'll love it.")
    assert by_product["Tandem Pro Kite"]["selling_points"].tolist() == [
        b"screen-free fun", b"award-winning design"
    ]
    assert by_product["Nimbus One Earbuds"]["prompt"] == (
        "Write a friendly electronics ad in English for Nimbus One Earbuds. "
        "Key selling points: all-day battery life; crystal-clear sound."
    )


def test_generates_from_its_grammar(tmp_path: Path) -> None:
    # 300 raw copies from seed 0: 280 survive cleaning and de-duplication.
    builder = check_builder(
        __file__,
        params={"raw_path": None, "num_examples": 300, "seed": 0},
        expected_splits={"train": 233, "validation": 22, "test": 25},
        data_dir=tmp_path,
    )
    examples = _examples(builder)
    _assert_clean(examples, 120, 400)
    languages = {int(e["language"]) for rows in examples.values() for e in rows}
    tones = {int(e["tone"]) for rows in examples.values() for e in rows}
    assert languages == {0, 1, 2} and tones == {0, 1, 2, 3, 4}
