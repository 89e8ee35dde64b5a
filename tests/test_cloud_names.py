"""Google Cloud naming rules (registry/cloud/names.py): each rule, valid and invalid, and that the
DVC remote, Dataflow and Vertex AI code all apply the same ones."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.cloud import names
from registry.cloud.dataflow import dataflow_flags
from registry.cloud.vertex import build_job_spec
from registry.errors import ConfigError
from registry.remotes import set_remote

KEY, WHERE = "beam.dataflow.x", "params.yaml"
FIX = "; fix it in params.yaml"


def refused(check: Any, *args: Any) -> str:
    """The one-line message of the ConfigError that ``check(*args)`` raises."""
    with pytest.raises(ConfigError) as caught:
        check(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- buckets --------------------------------------------------------------------------------------

PART_63 = "a" * 63


@pytest.mark.parametrize(
    "bucket",
    [
        "abc",
        "my-lab-registry",
        "lab_registry.v2",
        "a" * 63,
        "0-9",
        # Dotted (domain-named) buckets: up to 222 characters, each part at most 63.
        f"{PART_63}.{PART_63}.{PART_63}.{'b' * 30}",
        "data.my-lab.example.com",
    ],
)
def test_valid_bucket_names(bucket: str) -> None:
    assert names.check_bucket(bucket, KEY, WHERE) == bucket


@pytest.mark.parametrize(
    ("bucket", "says"),
    [
        ("ab", "it has 2 characters, not 3 to 63"),
        ("a" * 64, "it has 64 characters"),  # 64 without dots: over the plain limit
        (f"{PART_63}.{PART_63}.{PART_63}.{'b' * 31}", "it has 223 characters"),
        (f"{'a' * 64}.example.com", "a dot-separated part is longer than 63"),
        ("My-Bucket", "it holds 'BM'"),
        ("lab bucket", "it holds ' '"),
        ("-lab", "start and end with a lowercase letter or digit"),
        ("lab_", "start and end with a lowercase letter or digit"),
        ("lab..data", "two dots in a row"),
        ("192.168.5.4", "IP address"),
        ("goog-data", "reserves"),
        ("my-google-data", "reserves"),
    ],
)
def test_invalid_bucket_names_say_which_rule(bucket: str, says: str) -> None:
    message = refused(names.check_bucket, bucket, KEY, WHERE)
    assert message.startswith(f"{KEY}: {bucket!r} is not a valid bucket name: ")
    assert says in message
    assert message.endswith(FIX)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=80))
def test_a_name_without_dots_is_valid_exactly_up_to_63(middle: str) -> None:
    bucket = f"a{middle}z"
    if len(bucket) <= 63 and not bucket.startswith("goog") and "google" not in bucket:
        assert names.check_bucket(bucket, KEY, WHERE) == bucket
    elif len(bucket) > 63:
        assert "characters, not 3 to 63" in refused(names.check_bucket, bucket, KEY, WHERE)


@given(st.lists(st.from_regex(r"[a-f0-9]{1,63}", fullmatch=True), min_size=2, max_size=6))
def test_a_dotted_name_is_valid_exactly_up_to_222(parts: list[str]) -> None:
    bucket = ".".join(parts)
    if len(bucket) <= 222 and not re.fullmatch(r"[0-9.]+", bucket):
        assert names.check_bucket(bucket, KEY, WHERE) == bucket
    elif len(bucket) > 222:
        message = refused(names.check_bucket, bucket, KEY, WHERE)
        assert "characters, not 3 to 63 (up to 222" in message


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("gs://my-lab", ("my-lab", "")),
        ("gs://my-lab/", ("my-lab", "")),
        ("gs://my-lab/beam/tmp/", ("my-lab", "beam/tmp")),
    ],
)
def test_gs_paths_split_into_bucket_and_folder(path: str, parsed: tuple[str, str]) -> None:
    assert names.parse_gs_path(path, KEY, WHERE, "gs://my-lab/tmp") == parsed
    assert names.check_gs_path(path, KEY, WHERE, "gs://my-lab/tmp") == path.rstrip("/")


@pytest.mark.parametrize("path", ["/tmp/beam", "s3://lab/tmp", "gs://", "gs:///tmp", "my-lab/x"])
def test_a_path_that_is_not_gs_is_refused_with_an_example(path: str) -> None:
    message = refused(names.check_gs_path, path, KEY, WHERE, "gs://my-lab/tmp")
    assert message == (
        f"{KEY} must be a gs:// path (gs://BUCKET[/FOLDER], e.g. gs://my-lab/tmp), not {path!r}"
        f"{FIX}"
    )


def test_a_gs_path_with_an_invalid_bucket_names_the_bucket_and_the_path() -> None:
    message = refused(names.check_gs_path, "gs://My_Lab/tmp", KEY, WHERE, "gs://my-lab/tmp")
    assert message == (
        f"{KEY} 'gs://My_Lab/tmp': 'My_Lab' is not a valid bucket name: it holds 'LM'; use "
        f"lowercase letters, digits, '-', '_' and '.'{FIX}"
    )
    # A command-line argument has no file to fix it in.
    message = refused(names.check_gs_path, "gs://My_Lab/tmp", "the folder", "", "gs://a/b")
    assert message.startswith("the folder 'gs://My_Lab/tmp': 'My_Lab' is not a valid bucket")
    assert message.endswith("'.'")


# -- projects, regions, service accounts ----------------------------------------------------------


@pytest.mark.parametrize(
    "project", ["my-lab", "my-lab-123", "a" * 30, "abcdef", "example.com:my-lab"]
)
def test_valid_project_ids(project: str) -> None:
    assert names.check_project(project, KEY, WHERE) == project


@pytest.mark.parametrize(
    "project", ["my-l", "a" * 31, "My-Lab", "1-my-lab", "my-lab-", "my lab", "my_lab", ""]
)
def test_invalid_project_ids(project: str) -> None:
    message = refused(names.check_project, project, KEY, WHERE)
    assert message.startswith(f"{KEY} {project!r} is not a Google Cloud project id (6-30 lower")
    assert message.endswith(FIX)


@given(st.from_regex(r"[a-z][a-z0-9-]{0,40}[a-z0-9]", fullmatch=True))
def test_project_id_length_is_6_to_30(project: str) -> None:
    if 6 <= len(project) <= 30:
        assert names.check_project(project, KEY, WHERE) == project
    else:
        message = refused(names.check_project, project, KEY, WHERE)
        assert "is not a Google Cloud project id" in message


@pytest.mark.parametrize("region", ["us-central1", "europe-west4", "northamerica-northeast2"])
def test_valid_regions(region: str) -> None:
    assert names.check_region(region, KEY, WHERE) == region


@pytest.mark.parametrize("region", ["europe-west4-a", "us central1", "US-CENTRAL1", "global", ""])
def test_invalid_regions_and_zones(region: str) -> None:
    message = refused(names.check_region, region, KEY, WHERE)
    assert message.startswith(f"{KEY} {region!r} is not a Google Cloud region such as us-cent")
    assert "not a zone" in message and message.endswith(FIX)


@pytest.mark.parametrize(
    "account",
    [
        "trainer@my-lab.iam.gserviceaccount.com",
        "123456789-compute@developer.gserviceaccount.com",
        "service-1@gcp-sa-aiplatform.iam.gserviceaccount.com",
    ],
)
def test_valid_service_accounts(account: str) -> None:
    assert names.check_service_account(account, KEY, WHERE) == account


@pytest.mark.parametrize("account", ["trainer", "trainer@", "@my-lab.iam", "Trainer@My-Lab.com"])
def test_invalid_service_accounts_show_an_example_in_the_project(account: str) -> None:
    message = refused(
        lambda: names.check_service_account(account, KEY, WHERE, example="worker@lab-7")
    )
    assert message == (
        f"{KEY} must be a service account email such as worker@lab-7.iam.gserviceaccount.com, "
        f"not {account!r}{FIX}"
    )


# -- labels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "run-1", "image_classification-digits", "a" * 63, "été-1"])
def test_valid_label_values(value: str) -> None:
    assert names.check_label_value(value, KEY, WHERE) == value


def test_invalid_label_values() -> None:
    assert refused(names.check_label_value, "a" * 64, KEY, WHERE) == (
        f"{KEY} {'a' * 64!r} has 64 characters, but a Google Cloud label value has at most 63"
        f"{FIX}"
    )
    assert refused(names.check_label_value, "Run 1.0", "job id") == (
        "job id 'Run 1.0' is not a Google Cloud label value (lowercase letters, digits, '_' and "
        "'-'): it holds ' .R'"
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("image_classification/digits", "image_classification-digits"),
        ("products/product_a/ad_clicks", "products-product_a-ad_clicks"),
        ("ResNet18 Product Images", "resnet18-product-images"),
        ("--x--", "x"),
        ("a" * 100, "a" * 63),
    ],
)
def test_label_value_cleans_text(text: str, label: str) -> None:
    assert names.label_value(text) == label


@given(st.text(max_size=200))
def test_label_value_always_gives_a_valid_label(text: str) -> None:
    label = names.label_value(text)
    assert names.check_label_value(label, KEY, WHERE) == label
    assert names.label_value(label) == label


# -- every caller applies the same rules ----------------------------------------------------------

DOTTED = f"{PART_63}.example.com"  # 75 characters: valid only as a dotted name


def test_dataflow_vertex_and_the_remote_agree_on_a_long_dotted_bucket(
    make_registry: Any,
) -> None:
    flags = dataflow_flags(
        {"project": "my-lab", "region": "us-east1", "temp_location": f"gs://{DOTTED}/tmp"}
    )
    assert f"--temp_location=gs://{DOTTED}/tmp" in flags
    vertex = {
        "project": "my-lab",
        "region": "us-central1",
        "staging_bucket": f"gs://{DOTTED}/staging",
        "machine_type": "n1-standard-4",
        "image_uri": "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest",
        "output_uri": f"gs://{DOTTED}/training",
    }
    spec = build_job_spec("m", {"compute": {"backend": "vertex", "vertex": vertex}}, job_id="a")
    assert spec["staging_bucket"] == f"gs://{DOTTED}/staging"
    repo = make_registry(datasets=[])
    assert set_remote(f"gs://{DOTTED}/dvc", registry=repo).url == f"gs://{DOTTED}/dvc"


def test_dataflow_vertex_and_the_remote_refuse_a_64_character_bucket(
    make_registry: Any,
) -> None:
    bucket = "b" * 64
    says = f"'gs://{bucket}/tmp': {bucket!r} is not a valid bucket name: it has 64 characters"
    message = refused(
        dataflow_flags,
        {"project": "my-lab", "region": "us-east1", "temp_location": f"gs://{bucket}/tmp"},
    )
    assert message.startswith(f"beam.dataflow.temp_location {says}") and message.endswith(FIX)
    vertex = {"project": "my-lab", "region": "us-central1", "staging_bucket": f"gs://{bucket}",
              "machine_type": "n1-standard-4", "image_uri": "gcr.io/x/y",
              "output_uri": "gs://my-lab/out"}
    params = {"compute": {"backend": "vertex", "vertex": vertex}}
    message = refused(lambda: build_job_spec("m", params, job_id="a"))
    says = says.replace("/tmp", "")
    assert message.startswith(f"compute.vertex.staging_bucket {says}") and message.endswith(FIX)
    repo = make_registry(datasets=[])
    message = refused(lambda: set_remote(f"gs://{bucket}/dvc", registry=repo))
    assert message.startswith(f"the remote URL 'gs://{bucket}/dvc': {bucket!r} is not a valid")
