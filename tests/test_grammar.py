"""The name, version, reference and tag grammar: round trips and refusals."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import InvalidNameError, InvalidReferenceError, InvalidVersionError
from registry.grammar import (
    DeprecateTag,
    DeregisterTag,
    Reference,
    RegisterTag,
    StageTag,
    Version,
    VersionSpec,
    format_tag,
    parse_name,
    parse_reference,
    parse_tag,
    parse_version,
    parse_version_spec,
)

segments = st.from_regex(re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,10}[a-z0-9])?"), fullmatch=True)
names = st.lists(segments, min_size=1, max_size=4).map("/".join)
numbers = st.integers(min_value=0, max_value=10_000)
versions = st.builds(Version, numbers, numbers, numbers)
specs = st.one_of(
    st.builds(VersionSpec, numbers),
    st.builds(VersionSpec, numbers, numbers),
    st.builds(VersionSpec, numbers, numbers, numbers),
)
stages = segments
references = st.one_of(
    st.builds(Reference, names),
    st.builds(lambda n, v: Reference(n, version=v), names, specs),
    st.builds(lambda n, s: Reference(n, stage=s), names, stages),
)
tags = st.one_of(
    st.builds(RegisterTag, names, versions),
    st.builds(DeregisterTag, names, versions),
    st.builds(StageTag, names, stages, numbers, st.booleans()),
    st.builds(DeprecateTag, names, numbers),
)


@given(names)
def test_name_round_trip(name: str) -> None:
    assert parse_name(name) == name


@given(versions)
def test_version_round_trip(version: Version) -> None:
    assert parse_version(str(version)) == version
    assert parse_version(f"v{version}") == version


@given(specs)
def test_version_spec_round_trip(spec: VersionSpec) -> None:
    assert parse_version_spec(str(spec)) == spec


@given(references)
def test_reference_round_trip(ref: Reference) -> None:
    assert parse_reference(str(ref)) == ref


@given(tags)
def test_tag_round_trip(tag: RegisterTag | DeregisterTag | StageTag | DeprecateTag) -> None:
    assert parse_tag(format_tag(tag)) == tag


@given(versions, versions)
def test_versions_order_by_semver(a: Version, b: Version) -> None:
    assert (a < b) == ((a.major, a.minor, a.patch) < (b.major, b.minor, b.patch))


def test_version_order_is_numeric_not_lexical() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.0")


@pytest.mark.parametrize(
    ("spec", "version", "matches"),
    [
        ("1.*", "1.4.2", True),
        ("1.*", "2.0.0", False),
        ("1.2.*", "1.2.9", True),
        ("1.2.*", "1.3.0", False),
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.4", False),
    ],
)
def test_version_spec_matching(spec: str, version: str, matches: bool) -> None:
    assert parse_version_spec(spec).matches(parse_version(version)) is matches


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("../secrets", "relative path"),
        ("/etc/passwd", "relative path"),
        ("a/../../b", "relative path"),
        ("a\\b", "relative path"),
        ("Products/A", "lowercase"),
        ("ad clicks", "' '"),
        ("a//b", "empty path segments"),
        ("a/", "empty path segments"),
        ("-a", "starts and ends"),
        ("a_", "starts and ends"),
        ("a;rm -rf", "cannot contain"),
        ("x" * 201, "at most"),
    ],
)
def test_bad_names_are_refused_with_examples(text: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as error:
        parse_name(text)
    message = str(error.value)
    assert reason in message
    assert "products/product_a/ad_clicks" in message  # valid examples are listed
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("text", ["1", "1.2.3.4", "01.0.0", "1.0.0-rc1", "one.two.three", ""])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(InvalidVersionError, match=r"MAJOR\.MINOR\.PATCH"):
        parse_version(text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidReferenceError),
        ("name:", InvalidReferenceError),
        ("name@", InvalidReferenceError),
        ("name:1.0.0@prod", InvalidReferenceError),
        ("name@Prod", InvalidReferenceError),
        ("name:1.2.3.*", InvalidVersionError),
        ("name:latest", InvalidVersionError),
        ("Name:1.0.0", InvalidNameError),
    ],
)
def test_bad_references_are_refused(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_reference(text)


def test_reference_forms() -> None:
    assert parse_reference("a/b") == Reference("a/b")
    assert parse_reference("a/b:1.2.0") == Reference("a/b", version=VersionSpec(1, 2, 0))
    assert parse_reference("a/b:1.*") == Reference("a/b", version=VersionSpec(1))
    assert parse_reference("a/b@prod") == Reference("a/b", stage="prod")
    # GTO's shortcut for a version is accepted too.
    assert parse_reference("a/b@v1.2.0") == Reference("a/b", version=VersionSpec(1, 2, 0))


@pytest.mark.parametrize(
    "text",
    ["v1.0.0", "release-2024", "a/b@v1.0", "a/b@1.0.0", "a/b#prod", "Upper@v1.0.0", "a@v1.0.0-rc1"],
)
def test_foreign_tags_are_ignored(text: str) -> None:
    assert parse_tag(text) is None


def test_tags_are_gto_compatible() -> None:
    from gto.constants import tag_re

    for tag in (
        RegisterTag("products/product_a/ad_clicks", Version(1, 2, 0)),
        DeregisterTag("image_classification/digits", Version(1, 0, 0)),
        StageTag("resnet18-product-images", "prod", 3),
        StageTag("resnet18-product-images", "prod", 4, unassign=True),
        DeprecateTag("text_generation/ad_copy", 5),
    ):
        assert tag_re.match(format_tag(tag)), format_tag(tag)
