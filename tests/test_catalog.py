"""Releases and stages read from real Git tags, and references resolved against them."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.errors import ArtifactNotFoundError, VersionNotFoundError
from registry.grammar import parse_reference
from registry.repo.git import GitRepo
from registry.repo.tags import TagIndex
from tests.conftest import commit_all, git


@pytest.fixture
def tagged_repo(tmp_path: Path) -> GitRepo:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    for i in range(4):
        (repo / "file").write_text(str(i))
        commits.append(commit_all(repo, f"commit {i}"))
    name = "products/product_a/ad_clicks"
    for commit, version in zip(commits, ["1.0.0", "1.1.0", "1.10.0", "2.0.0"], strict=True):
        git(repo, "tag", "-a", "-m", "release", f"{name}@v{version}", commit)
    git(repo, "tag", "-a", "-m", "withdrawn", f"{name}@v2.0.0!", commits[3])
    git(repo, "tag", "-a", "-m", "promote", f"{name}#prod#1", commits[1])
    git(repo, "tag", "-a", "-m", "promote", f"{name}#staging#2", commits[2])
    git(repo, "tag", "-a", "-m", "promote", f"{name}#prod#3", commits[2])
    git(repo, "tag", "-a", "-m", "demote", f"{name}#staging!#4", commits[2])
    git(repo, "tag", "image_classification/digits@v0.1.0", commits[0])  # lightweight
    git(repo, "tag", "v1.0.0", commits[0])  # a foreign tag
    return GitRepo.open(str(repo), tmp_path / "cache")


def test_tags_are_read_with_commits_peeled(tagged_repo: GitRepo) -> None:
    tags = {t.name: t for t in tagged_repo.tags()}
    head = tagged_repo.resolve_commit("HEAD")
    assert tags["products/product_a/ad_clicks@v2.0.0"].commit == head
    assert tags["image_classification/digits@v0.1.0"].commit != head
    # One artifact's listing reads each tag's details; every tag's, only a yank tag's.
    fresh = GitRepo.open(str(tagged_repo.path), tagged_repo.path.parent / "cache")
    one = {t.name: t for t in fresh.tags(["products/product_a/ad_clicks"])}
    assert one["products/product_a/ad_clicks@v1.0.0"].message == "release"
    assert one["products/product_a/ad_clicks@v1.0.0"].created.startswith("20")
    assert tags["products/product_a/ad_clicks@v1.0.0"].message == ""
    yank = tags["products/product_a/ad_clicks@v2.0.0!"]
    assert (yank.message, yank.tagger) == ("withdrawn", "researcher@lab.test")


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_every_tag_is_listed_as_for_each_ref_peels_it(tagged_repo: GitRepo, packed: bool) -> None:
    """The listing of every tag takes names and commits from ``show-ref --dereference`` (in a
    clone: ``packed-refs``' peeled lines, no tag object read): each tag's commit peeled fully,
    as ``rev-parse TAG^{}`` gives it, for annotated, lightweight and nested tags, packed or
    loose (``for-each-ref``'s ``%(*objectname)`` peels one level: a tag's tag, not its commit)."""
    path = tagged_repo.path
    git(path, "tag", "-a", "-m", "a tag of a tag", "nested@v1.0.0", "image_classification/"
        "digits@v0.1.0")
    git(path, "tag", "-a", "-m", "on a tag", "twice@v1.0.0", "products/product_a/ad_clicks@v1.0.0")
    if packed:
        git(path, "pack-refs", "--all")
    fresh = GitRepo.open(str(path), path.parent / "cache")
    listed = {t.name: t.commit for t in fresh.tags()}
    names = git(path, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags").split()
    peeled = git(path, "rev-parse", *(f"refs/tags/{n}^{{}}" for n in names)).split()
    assert listed == dict(zip(names, peeled, strict=True))
    assert list(listed) == names  # in ref-name order, as for-each-ref
    assert listed["twice@v1.0.0"] == fresh.resolve_commit("products/product_a/ad_clicks@v1.0.0")
    # One artifact's listing (for-each-ref) gives the same commits.
    again = GitRepo.open(str(path), path.parent / "cache")
    assert {t.name: t.commit for t in again.tags(["twice", "nested"])} == {
        n: listed[n] for n in ("nested@v1.0.0", "twice@v1.0.0")
    }


def test_a_listing_without_yank_tags_reads_no_tag_object(tmp_path: Path) -> None:
    """With no yank tag, no detail is asked for: nothing is listed a second time with every
    tag object read (a ``for-each-ref`` without a pattern would list every tag)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit = commit_all(repo, "one")
    git(repo, "tag", "-a", "-m", "release", "d@v1.0.0", commit)
    tags = GitRepo.open(str(repo), tmp_path / "cache").tags()
    assert [(t.name, t.commit, t.message, t.created) for t in tags] == [
        ("d@v1.0.0", commit, "", "")
    ]
    assert tags[0].object == git(repo, "rev-parse", "refs/tags/d@v1.0.0").strip()


def test_many_tag_messages_are_read_by_object_as_for_each_ref_reads_them(
    tmp_path: Path,
) -> None:
    """Past a few tags, ``tag_messages(names)`` reads those tag objects by id through one
    ``cat-file``: the same messages as the listing of every tag's (``for-each-ref``)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit = commit_all(repo, "one")
    names = [f"m{i}@v1.0.0" for i in range(60)]
    for i, name in enumerate(names):
        git(repo, "tag", "-a", "-m", f"Release m{i}\n\nlineage: {{\"n\": {i}}}", name, commit)
    git(repo, "tag", "light@v1.0.0", commit)  # a lightweight tag: no message of its own
    opened = GitRepo.open(str(repo), tmp_path / "cache")
    wanted = [*names[:55], "light@v1.0.0", "nope@v1.0.0"]
    many = opened.tag_messages(wanted)
    every = opened.tag_messages()
    assert set(many) == set(wanted[:-1])
    assert all(many[n] == every[n] for n in names[:55])
    assert many["m7@v1.0.0"].startswith("Release m7\n\nlineage: {\"n\": 7}")
    assert many["light@v1.0.0"] == ""


def test_tag_dates_read_only_the_tags_named(tagged_repo: GitRepo) -> None:
    name = "products/product_a/ad_clicks@v1.0.0"
    dates = tagged_repo.tag_dates([name, "no-such@v1.0.0"])
    assert list(dates) == [name] and dates[name] == tagged_repo.git(
        "for-each-ref", "--format=%(creatordate:iso-strict)", f"refs/tags/{name}").strip()
    assert tagged_repo.tag_dates([]) == {}


def test_many_files_are_read_at_once_as_one_by_one(tagged_repo: GitRepo) -> None:
    """``read_files`` (the trees walked here, each read once) answers as ``read_file`` (Git's
    own ``rev:path``) does, in order: a missing path, a folder, a path through a file or a
    symlink and an unknown revision are ``None``; a symlink is its target's text."""
    (tagged_repo.path / "folder" / "deeper").mkdir(parents=True)
    (tagged_repo.path / "folder" / "empty").write_bytes(b"")
    (tagged_repo.path / "folder" / "binary").write_bytes(bytes(range(256)) * 300 + b"\n")
    (tagged_repo.path / "folder" / "deeper" / "card.md").write_text("deep")
    (tagged_repo.path / "link").symlink_to("folder")
    commit_all(tagged_repo.path, "files")
    wanted = [("HEAD", "file"), ("HEAD", "folder/binary"), ("HEAD", "nothing"),
              ("HEAD", "folder"), ("no-such-rev", "file"), ("HEAD", "folder/empty"),
              ("HEAD~2", "file"), ("HEAD", "new\nline"), ("HEAD", "folder/deeper/card.md"),
              ("HEAD^{commit}", "folder/deeper/card.md"), ("HEAD", "link"),
              ("HEAD", "link/empty"), ("HEAD", "file/inside"), ("HEAD", "folder/"),
              ("HEAD", "folder//empty"), ("HEAD", ""), ("HEAD", "folder/nothing/deeper"),
              ("new\nline", "file")]
    at_once = tagged_repo.read_files(wanted)
    assert at_once == [tagged_repo.read_file(rev, path) for rev, path in wanted]
    assert at_once == [b"3", bytes(range(256)) * 300 + b"\n", None, None, None, b"", b"2", None,
                       b"deep", b"deep", b"folder", None, None, None, None, None, None, None]
    assert tagged_repo.read_files([]) == []


def test_reading_more_than_a_pipe_holds_at_once_does_not_block(tagged_repo: GitRepo) -> None:
    """Requests and answers far beyond a pipe's 64 KiB go through the long-lived process (a
    thread writes while the answers are read), in order, and it still answers afterwards."""
    many = tagged_repo.path / "many"
    many.mkdir()
    for i in range(3000):  # 3,000 distinct blobs: ~120 KiB of requests, ~600 KiB of answers
        (many / str(i)).write_text(f"{i:0200d}")
    commit_all(tagged_repo.path, "many files")
    wanted = [("HEAD", f"many/{i}") for i in range(3000)]
    assert tagged_repo.read_files(wanted) == [f"{i:0200d}".encode() for i in range(3000)]
    assert tagged_repo.read_file("HEAD", "many/7") == f"{7:0200d}".encode()


def test_releases_exclude_withdrawn_and_order_by_semver(tagged_repo: GitRepo) -> None:
    index = TagIndex(tagged_repo.tags())
    name = "products/product_a/ad_clicks"
    assert [str(r.version) for r in index.releases(name)] == ["1.0.0", "1.1.0", "1.10.0"]
    assert str(index.latest(name).version) == "1.10.0"
    assert index.names() == ["image_classification/digits", name]


def test_a_lazy_index_lists_only_the_tags_asked_about(
    tagged_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command about one artifact lists that artifact's tags, not every tag of the registry,
    and answers as the full index does."""
    name = "products/product_a/ad_clicks"
    calls: list[list[str] | None] = []

    def load(names: list[str] | None) -> list:
        calls.append(names)
        return tagged_repo.tags(names)

    full, lazy = TagIndex(tagged_repo.tags()), TagIndex.lazy(load)
    assert lazy.releases(name) == full.releases(name)
    assert lazy.stages(name) == full.stages(name) and lazy.yanked(name) == full.yanked(name)
    assert lazy.next_counter(name) == full.next_counter(name) == 5
    assert calls == [[name]]
    assert {t.name for t in load(["image_classification/digits"])} == {
        "image_classification/digits@v0.1.0"
    }
    with pytest.raises(ArtifactNotFoundError, match="image_classification/digits"):
        lazy.resolve(parse_reference("image_classification/digitz"), kind="dataset")
    assert calls[-1] is None  # the suggestions come from every artifact
    assert lazy.names() == full.names()
    assert TagIndex.lazy(load).every_name() == full.every_name()  # every name, not those read

    # Past the limit of artifacts asked about one by one, every tag is listed at once.
    monkeypatch.setattr(TagIndex, "_LAZY_LIMIT", 1)
    calls.clear()
    lazy = TagIndex.lazy(load)
    lazy.latest(name)
    lazy.latest("image_classification/digits")
    assert calls == [[name], None]
    assert lazy.latest("image_classification/digits") == full.latest("image_classification/digits")


def test_a_kind_reads_its_own_tags_however_many_artifacts(
    tagged_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``list`` and ``search`` narrow every tagged name down to their kind and preload those
    in one listing, past the one-by-one limit too: the other kind's tags are never parsed."""
    calls: list[list[str] | None] = []

    def load(names: list[str] | None) -> list:
        calls.append(names)
        return tagged_repo.tags(names)

    monkeypatch.setattr(TagIndex, "_LAZY_LIMIT", 1)
    lazy, full = TagIndex.lazy(load), TagIndex(tagged_repo.tags())
    names = lazy.tagged_names()
    # Names split off the tags' names, nothing parsed: a foreign tag's name is there too.
    assert names == {"products/product_a/ad_clicks", "image_classification/digits", "v1.0.0"}
    assert lazy._releases == {}
    wanted = sorted(names - {"v1.0.0"})
    lazy.preload(wanted)
    assert calls == [None, wanted]  # one listing for both, past the limit of 1
    assert all(lazy.releases(n) == full.releases(n) for n in wanted)
    assert lazy.stages("products/product_a/ad_clicks") == full.stages(
        "products/product_a/ad_clicks")
    assert calls == [None, wanted]  # asked about after the preload: no more listings
    assert TagIndex(tagged_repo.tags()).tagged_names() >= set(full.names())


def test_stages_follow_the_latest_assignment(tagged_repo: GitRepo) -> None:
    index = TagIndex(tagged_repo.tags())
    stages = index.stages("products/product_a/ad_clicks")
    assert {s: str(r.version) for s, r in stages.items()} == {"prod": "1.10.0"}


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("products/product_a/ad_clicks", "1.10.0"),
        ("products/product_a/ad_clicks:1.*", "1.10.0"),
        ("products/product_a/ad_clicks:1.1.*", "1.1.0"),
        ("products/product_a/ad_clicks:1.0.0", "1.0.0"),
        ("products/product_a/ad_clicks@prod", "1.10.0"),
    ],
)
def test_resolve(tagged_repo: GitRepo, ref: str, version: str) -> None:
    release = TagIndex(tagged_repo.tags()).resolve(parse_reference(ref), kind="dataset")
    assert str(release.version) == version


def test_unknown_version_lists_the_released_ones(tagged_repo: GitRepo) -> None:
    index = TagIndex(tagged_repo.tags())
    with pytest.raises(VersionNotFoundError) as error:
        index.resolve(parse_reference("products/product_a/ad_clicks:2.*"), kind="dataset")
    assert "1.0.0, 1.1.0, 1.10.0" in str(error.value)
    assert isinstance(error.value, LookupError)


def test_unknown_stage_names_the_existing_ones(tagged_repo: GitRepo) -> None:
    ref = parse_reference("products/product_a/ad_clicks@staging")
    with pytest.raises(VersionNotFoundError, match=r"@staging \(stages: prod\)"):
        TagIndex(tagged_repo.tags()).resolve(ref, kind="dataset")


def test_unknown_stage_of_a_model_says_how_to_promote_one(tagged_repo: GitRepo) -> None:
    ref = parse_reference("products/product_a/ad_clicks@staging")
    with pytest.raises(VersionNotFoundError) as error:
        TagIndex(tagged_repo.tags()).resolve(ref, kind="model")
    assert error.value.kind == "model"
    assert str(error.value).endswith(
        "or give one the stage with "
        "'registry models promote products/product_a/ad_clicks:1.10.0 staging'."
    )


def test_unknown_name_suggests_close_ones(tagged_repo: GitRepo) -> None:
    with pytest.raises(ArtifactNotFoundError, match="products/product_a/ad_clicks"):
        TagIndex(tagged_repo.tags()).resolve(
            parse_reference("products/product_a/ad_click"), kind="dataset"
        )
    with pytest.raises(ArtifactNotFoundError, match="registry datasets list"):
        TagIndex(tagged_repo.tags()).resolve(parse_reference("zzz"), kind="dataset")


def test_known_but_unreleased_name_says_none_released(tagged_repo: GitRepo) -> None:
    index = TagIndex(tagged_repo.tags())
    with pytest.raises(VersionNotFoundError, match="registry datasets release text/new"):
        index.resolve(parse_reference("text/new"), known=["text/new"], kind="dataset")
    with pytest.raises(VersionNotFoundError, match=r"none yet.*registry models release text/new"):
        index.resolve(parse_reference("text/new"), known=["text/new"], kind="model")


def test_mirror_of_a_url_is_cloned_once_and_refreshed(tmp_path: Path, tagged_repo: GitRepo) -> None:
    url = f"file://{tagged_repo.path}"
    mirror = GitRepo.open(url, tmp_path / "cache2")
    assert mirror.work_tree is None
    assert {t.name for t in mirror.tags()} == {t.name for t in tagged_repo.tags()}
    git(tagged_repo.path, "tag", "-a", "-m", "new", "text/new@v1.0.0")
    again = GitRepo.open(url, tmp_path / "cache2")
    assert "text/new@v1.0.0" not in {t.name for t in again.tags()}
    again.refresh()
    assert "text/new@v1.0.0" in {t.name for t in again.tags()}
    assert again.read_file("text/new@v1.0.0", "file") == b"3"
    assert again.read_file("HEAD", "missing") is None


def test_a_local_bare_repository_is_read_in_place_and_never_fetched(
    tmp_path: Path, tagged_repo: GitRepo
) -> None:
    # A lab's registry at /srv/git/registry.git (REGISTRY_URL as a plain path): no mirror, and
    # nothing to fetch from (it has no origin of its own), yet always current.
    bare = tmp_path / "registry.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(tagged_repo.path, "push", "-q", str(bare), "HEAD:refs/heads/main", "--tags")
    repo = GitRepo.open(str(bare), tmp_path / "cache")
    assert repo.path == bare.resolve() and repo.work_tree is None
    repo.refresh()  # a no-op, not "'origin' does not appear to be a git repository"
    git(bare, "tag", "-a", "-m", "new", "text/new@v1.0.0", "HEAD")
    assert "text/new@v1.0.0" in {t.name for t in GitRepo.open(str(bare), tmp_path).tags()}
    assert not (tmp_path / "cache").exists()


def test_a_mirror_cloned_while_the_remotes_head_was_broken_recovers(tmp_path: Path) -> None:
    # The remote's HEAD names a branch nobody has pushed yet; its only branch is 'trunk'.
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", str(work))
    (work / "file").write_text("1")
    commit_all(work, "one")
    git(work, "push", "-q", str(remote), "HEAD:refs/heads/trunk")
    git(remote, "symbolic-ref", "HEAD", "refs/heads/not-yet")
    url = f"file://{remote}"
    broken = GitRepo.open(url, tmp_path / "cache")
    assert broken.read_file("HEAD", "file") is None

    git(remote, "symbolic-ref", "HEAD", "refs/heads/trunk")  # fixed
    mirror = GitRepo.open(url, tmp_path / "cache")
    mirror.refresh()
    assert mirror.read_file("HEAD", "file") == b"1"
    assert mirror.resolve_commit("HEAD") == git(work, "rev-parse", "HEAD").strip()


def test_ever_released_counts_withdrawn_versions_exactly(tagged_repo: GitRepo) -> None:
    from registry.grammar import Version

    index = TagIndex(tagged_repo.tags())
    name = "products/product_a/ad_clicks"
    assert index.ever_released(name, Version(2, 0, 0))  # withdrawn, still never re-released
    # 1.1.0 and 1.10.0 are released; neither is taken for the other by a prefix match.
    assert index.ever_released(name, Version(1, 1, 0))
    assert not index.ever_released(name, Version(1, 1, 1))
    assert not index.ever_released(name, Version(1, 0, 1))


@pytest.mark.parametrize("ref", [None, 1, ["digits"]])
def test_a_reference_that_is_not_text_is_an_invalid_reference(ref: object) -> None:
    import re

    import registry
    from registry.errors import InvalidReferenceError

    expected = (
        f"invalid reference {str(ref)!r}: a reference is text such as 'name:1.0.0', not "
        f"{type(ref).__name__}. Examples:"
    )
    for load in (registry.load_dataset, registry.load_model, registry.dataset_info):
        with pytest.raises(InvalidReferenceError, match=f"^{re.escape(expected)}"):
            load(ref)  # type: ignore[operator]


# -- yanked versions (PEP 592) ------------------------------------------------------------------


def test_latest_and_ranges_skip_a_yanked_version_and_a_pin_still_finds_it(
    tagged_repo: GitRepo,
) -> None:
    index = TagIndex(tagged_repo.tags())
    name = "products/product_a/ad_clicks"
    assert index.resolve(parse_reference(name), kind="dataset").yanked is None
    pinned = index.resolve(parse_reference(f"{name}:2.0.0"), kind="dataset")
    assert str(pinned.version) == "2.0.0" and pinned.yanked is not None
    # A tag written by hand (or by GTO) keeps its whole subject as the reason.
    assert pinned.yanked.reason == "withdrawn" and pinned.yanked.tag == f"{name}@v2.0.0!"
    assert index.yank_reasons(name) == {"2.0.0": "withdrawn"}
    assert [str(r.version) for r in index.yanked(name)] == ["2.0.0"]
    with pytest.raises(VersionNotFoundError) as error:
        index.resolve(parse_reference(f"{name}:2.*"), kind="dataset")
    assert f"not yanked (yanked: {name}:2.0.0; pin one exactly to load it)" in str(error.value)


def test_a_yank_message_gives_the_reason_and_the_tagger(tmp_path: Path) -> None:
    from registry.grammar import Version
    from registry.repo.tags import yank_message

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit = commit_all(repo, "one")
    git(repo, "tag", "-a", "-m", "release", "d@v1.0.0", commit)
    message = yank_message("d", Version(1, 0, 0), "bad\n labels", "a@lab.test", "2026-01-02")
    git(repo, "tag", "-a", "-m", message, "d@v1.0.0!", commit)
    index = TagIndex(GitRepo.open(str(repo), tmp_path / "cache").tags())
    yank = index.resolve(parse_reference("d:1.0.0"), kind="dataset").yanked
    assert yank is not None and yank.reason == "bad labels"
    assert yank.by == "researcher@lab.test"  # the tagger, as Git recorded it
    assert index.latest("d") is None and index.ever_released("d", Version(1, 0, 0))


def test_in_tree_tells_a_kind_apart_in_a_clone_and_in_a_mirror(tmp_path: Path) -> None:
    """``Session.in_tree``: a file check a name in a clone, one listing of the tree for a
    mirror; the same answer both ways."""
    from registry.repo.session import open_session

    repo = tmp_path / "repo"
    (repo / "datasets" / "group" / "digits").mkdir(parents=True)
    (repo / "datasets" / "group" / "digits" / "digits_dataset_builder.py").write_text("")
    (repo / "models" / "cnn").mkdir(parents=True)
    (repo / "models" / "cnn" / "README.md").write_text("---\n---\n")
    git(repo, "init", "-q")
    commit_all(repo, "tree")
    names = ["group/digits", "cnn", "gone", "group"]
    for where in (str(repo), f"file://{repo}"):
        session = open_session(where)
        assert session.in_tree(names, "dataset") == {"group/digits"}, where
        assert session.in_tree(names, "model") == {"cnn"}, where
        assert session.in_tree([], "model") == set()


def test_reading_tags_and_files_imports_no_gitpython(tagged_repo: GitRepo) -> None:
    """The read path runs plain ``git`` processes: GitPython's import (~75 ms) is never paid
    by a lookup, a listing or a file read."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from registry.grammar import parse_reference\n"
        "from registry.repo.git import GitRepo\n"
        "from registry.repo.tags import TagIndex\n"
        f"repo = GitRepo.open({str(tagged_repo.path)!r}, Path({str(tagged_repo.path)!r}))\n"
        "index = TagIndex.lazy(repo.tags)\n"
        "index.resolve(parse_reference('products/product_a/ad_clicks@prod'), kind='dataset')\n"
        "index.names()\n"
        "assert repo.read_file('HEAD', 'file') == b'3'\n"
        "repo.read_files([('HEAD', 'file')]); repo.tag_messages([f'x{i}' for i in range(60)])\n"
        "repo.tag_message('products/product_a/ad_clicks@v1.0.0')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('git', 'gitdb')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
