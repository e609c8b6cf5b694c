from pathlib import Path

import pytest

from mer_ray.data.sources import list_inputs, video_id_for


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_ravdess_tree_any_nesting(tmp_path):
    touch(tmp_path / "Actor_01" / "01-01-03-01-01-01-01.mp4")
    touch(tmp_path / "song" / "deep" / "Actor_02" / "01-02-04-02-01-02-02.mp4")
    touch(tmp_path / "Actor_01" / "01-01-02-01-01-01-01.mp4")   # calm
    touch(tmp_path / "Actor_01" / "notes.txt")                 # not media: ignored
    touch(tmp_path / ".hidden" / "01-01-03-01-01-01-03.mp4")   # hidden: ignored
    items = list_inputs(str(tmp_path))
    assert len(items) == 3
    by_name = {Path(it.path).name: it for it in items}
    happy = by_name["01-01-03-01-01-01-01.mp4"]
    assert (happy.label, happy.label_index, happy.actor, happy.speaker) == ("happy", 3, 1, "01")
    song = by_name["01-02-04-02-01-02-02.mp4"]
    assert song.vocal_channel == "song" and song.label == "sad" and song.intensity == 2
    calm = by_name["01-01-02-01-01-01-01.mp4"]
    assert calm.label is None and "calm" in calm.drop_reason
    assert len({it.video_id for it in items}) == 3


def test_plain_folder_is_unlabeled(tmp_path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "b.wav")
    items = list_inputs(str(tmp_path))
    assert [it.corpus for it in items] == ["folder", "folder"]
    assert all(it.label is None and it.drop_reason is None for it in items)
    assert items[1].modality == "audio-only"


def test_manifest_labels_and_speakers(tmp_path):
    touch(tmp_path / "clips" / "x.mp4")
    touch(tmp_path / "clips" / "y.mp4")
    touch(tmp_path / "clips" / "z.mp4")
    (tmp_path / "m.csv").write_text("path,label,speaker\nclips/x.mp4,Fearful,spk1\n"
                                    "clips/y.mp4,calm,spk2\nclips/z.mp4,bored,spk2\n")
    items = {Path(it.path).name: it for it in list_inputs(str(tmp_path / "m.csv"))}
    assert items["x.mp4"].label == "fear" and items["x.mp4"].speaker == "spk1"
    assert items["y.mp4"].label is None and items["y.mp4"].drop_reason
    assert "unknown emotion" in items["z.mp4"].drop_reason
    assert all(it.corpus == "manifest" for it in items.values())


def test_manifest_without_path_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.mp4,happy\n")
    with pytest.raises(ValueError, match="'path' column"):
        list_inputs(str(tmp_path / "m.csv"))


def test_missing_source():
    with pytest.raises(FileNotFoundError, match="input not found"):
        list_inputs("/nonexistent/folder")


def test_glob_and_single_file(tmp_path):
    a = touch(tmp_path / "Actor_03" / "01-01-05-01-01-01-03.mp4")
    touch(tmp_path / "Actor_03" / "01-01-05-01-01-02-03.mp4")
    assert len(list_inputs(str(tmp_path / "**" / "*-01-03.mp4"))) == 1
    (single,) = list_inputs(str(a))
    assert single.label == "angry" and single.actor == 3


def test_video_id_is_stable_and_os_independent():
    assert video_id_for("Actor_01/a.mp4") == video_id_for("Actor_01/a.mp4")
    assert video_id_for("Actor_01/a.mp4") != video_id_for("Actor_01/b.mp4")


def linked_folder(root: Path) -> Path:
    """clip.mp4, a relative and an absolute symlink to it, and a hard link: four names, one file."""
    import os

    clip = touch(root / "clip.mp4")
    os.symlink("clip.mp4", root / "rel_link.mp4")
    os.symlink(clip.resolve(), root / "abs_link.mp4")
    os.link(clip, root / "hard_link.mp4")
    return root


def test_links_keep_the_names_given(tmp_path, monkeypatch):
    archive = linked_folder(tmp_path / "archive")
    items = list_inputs(str(archive))
    names = ["abs_link.mp4", "clip.mp4", "hard_link.mp4", "rel_link.mp4"]
    assert [it.path for it in items] == [str(archive / n) for n in names]
    assert len({it.video_id for it in items}) == 4
    monkeypatch.chdir(tmp_path)                      # a relative folder: absolute, not resolved
    assert [it.path for it in list_inputs("archive")] == [str(archive / n) for n in names]
    linked_dir = tmp_path / "via_link"
    linked_dir.symlink_to(archive)                   # a symlinked input folder stays as given
    assert list_inputs(str(linked_dir))[0].path == str(linked_dir / "abs_link.mp4")
    assert list_inputs(str(archive / "rel_link.mp4"))[0].path == str(archive / "rel_link.mp4")


def test_manifest_paths_are_not_resolved(tmp_path):
    archive = linked_folder(tmp_path / "archive")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\narchive/rel_link.mp4,happy\n{archive / 'abs_link.mp4'},sad\n")
    assert [it.path for it in list_inputs(str(manifest))] == [
        str(archive / "abs_link.mp4"), str(archive / "rel_link.mp4")]


def test_folder_order_is_by_path_components(tmp_path):
    """Files sort as Path objects do (component by component): a/b.mp4 before a-c.mp4, though
    '-' sorts before '/' as text; the table and the items agree."""
    from mer_ray.data.sources import INPUT_SCHEMA, list_inputs_table

    touch(tmp_path / "a" / "b.mp4")
    touch(tmp_path / "a-c.mp4")
    touch(tmp_path / "a" / ".hidden.mp4")
    touch(tmp_path / "a" / ".wav")                      # no suffix: not media
    table = list_inputs_table(str(tmp_path))
    assert table.schema == INPUT_SCHEMA
    assert table.column("path").to_pylist() == [str(tmp_path / "a" / "b.mp4"), str(tmp_path / "a-c.mp4")]
    assert [it.path for it in list_inputs(str(tmp_path))] == table.column("path").to_pylist()


TRICKY_MANIFEST = (
    "path,label,speaker,notes\n"
    'clips/b.mp4, Fearful ,  spk1 ,"a, b"\n'
    "clips/a.WAV,calm,,\n"
    "./clips/../clips/c.mp4,bored,spk2,\n"
    "/abs/d.flac,HAPPY,spk2,\n"
    "s3://bucket/e.mp4,,spk3,\n"
    "clips/.wav,angry,,\n"
    "clips/b.mp4,sad,spk9,\n"            # the same path again: kept, in manifest order
    "\n"
    "clips/f.mp4,surprised,spk1,\n")


def test_manifest_columns_match_the_row_by_row_reader(tmp_path):
    """pyarrow's CSV reader and csv.DictReader give the same rows: paths resolved, labels
    normalised or dropped with their reason, speakers stripped, order stable for duplicates;
    a ragged file (short rows), which pyarrow refuses, is read row by row."""
    import io

    from mer_ray.data.sources import (_manifest_columns, _manifest_header, _manifest_rows,
                                      list_inputs_table)

    manifest = tmp_path / "m.csv"
    manifest.write_text(TRICKY_MANIFEST)
    header = _manifest_header(io.StringIO(TRICKY_MANIFEST), "m")
    columns = _manifest_columns(str(manifest), header, str(tmp_path))
    rows = _manifest_rows(io.StringIO(TRICKY_MANIFEST, newline=""), "m", str(tmp_path))
    assert columns is not None and columns.to_pylist() == rows.to_pylist()
    got = {(r["path"], r["speaker"]): r for r in columns.to_pylist()}
    assert got[(str(tmp_path / "clips/b.mp4"), "spk1")]["label"] == "fear"
    assert got[(str(tmp_path / "clips/a.WAV"), None)]["modality"] == "audio-only"
    assert got[(str(tmp_path / "clips/.wav"), None)]["modality"] == "unknown"
    assert "unknown emotion" in got[(str(tmp_path / "clips/c.mp4"), "spk2")]["drop_reason"]
    assert [r["speaker"] for r in columns.to_pylist() if r["path"].endswith("b.mp4")] == ["spk1", "spk9"]
    ragged = tmp_path / "r.csv"
    ragged.write_text("path,label,speaker\nclips/x.mp4,happy\nclips/y.mp4\n")
    assert _manifest_columns(str(ragged), ["path", "label", "speaker"], str(tmp_path)) is None
    assert [(it["label"], it["speaker"]) for it in list_inputs_table(str(ragged)).to_pylist()] == [
        ("happy", None), (None, None)]
