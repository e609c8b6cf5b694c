"""Local paths and URIs: storage helpers, and file:// end to end through list_inputs,
preprocess and score (file:// goes through the same copy/upload code as s3://); training on
file:// shards into a file:// run directory is test_train's audio run."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest

from mer_ray import storage
from mer_ray.data.sources import list_inputs

from expected_rows import assert_one_row_per_input

# Ray workers started after this inherit it: their bundle cache stays out of ~/.cache
os.environ.setdefault(storage.CACHE_ENV, tempfile.mkdtemp(prefix="mer-ray-test-cache-"))
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")



def uri(path) -> str:
    return Path(path).resolve().as_uri()


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- storage helpers ---------------------------------------------------------------------------

def test_resolve_fs_and_join(tmp_path):
    import pyarrow.fs as pafs

    fs, inner = storage.resolve_fs("rel/dir")
    assert isinstance(fs, pafs.LocalFileSystem) and inner == os.path.abspath("rel/dir")
    fs, inner = storage.resolve_fs(uri(tmp_path))
    assert isinstance(fs, pafs.LocalFileSystem) and inner == str(tmp_path.resolve())
    assert storage.join("s3://b/dir/?region=x", "a/b.mp4") == "s3://b/dir/a/b.mp4?region=x"
    assert storage.parent("s3://b/dir/m.csv") == "s3://b/dir"
    assert not storage.is_uri("/data/x.mp4") and storage.is_uri("file:///data/x.mp4")


def test_local_copy_keeps_extension_and_removes_the_temp_file(tmp_path):
    src = write(tmp_path / "in" / "clip.MP4", b"abc" * 1000)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with storage.local_copy(uri(src), tmp_dir=str(tmp)) as local:
        assert Path(local).parent == tmp and local.endswith(".MP4")
        assert Path(local).read_bytes() == src.read_bytes()
    assert not Path(local).exists() and not list(tmp.iterdir())
    with storage.local_copy(str(src)) as same:            # local paths pass through
        assert same == str(src)
    assert src.exists()


def test_local_copy_refuses_before_downloading(tmp_path):
    src = write(tmp_path / "big.mp4", b"x" * 5000)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with pytest.raises(storage.TooLargeError) as err:
        with storage.local_copy(uri(src), max_bytes=4000, tmp_dir=str(tmp)):
            pass
    assert err.value.size == 5000 and not list(tmp.iterdir())   # nothing was written
    with pytest.raises(FileNotFoundError, match="no such object"):
        with storage.local_copy(uri(tmp_path / "gone.mp4"), tmp_dir=str(tmp)):
            pass
    with pytest.raises(IsADirectoryError):
        with storage.local_copy(uri(tmp), tmp_dir=str(tmp)):
            pass


@pytest.fixture
def count_copies(monkeypatch):
    calls = []
    real = storage._copy_stream
    monkeypatch.setattr(storage, "_copy_stream", lambda *a: (calls.append(a[2]), real(*a)))
    return calls


def test_fetch_dir_reuses_a_complete_copy_only(tmp_path, count_copies):
    remote = tmp_path / "remote"
    write(remote / "bundle.json", b'{"a": 1}')
    write(remote / "model.keras", b"m" * 300)
    write(remote / "big.bin", b"b" * 100)
    cache = tmp_path / "cache"
    want = lambda f: f.base_name != "big.bin"  # noqa: E731
    first = storage.fetch_dir(uri(remote), str(cache), want)
    assert sorted(os.listdir(first)) == ["bundle.json", "model.keras"]
    assert Path(first, "model.keras").read_bytes() == b"m" * 300
    assert len(count_copies) == 2
    assert storage.fetch_dir(uri(remote), str(cache), want) == first
    assert len(count_copies) == 2                          # reused, nothing downloaded
    Path(first, "model.keras").write_bytes(b"m" * 10)      # a damaged / partial copy
    again = storage.fetch_dir(uri(remote), str(cache), want)
    assert again == first and Path(again, "model.keras").read_bytes() == b"m" * 300
    assert len(count_copies) == 4
    assert [p.name for p in cache.iterdir()] == [Path(first).name]   # no temp dir left behind
    write(remote / "model.keras", b"n" * 301)              # a new model under the same URI
    newer = storage.fetch_dir(uri(remote), str(cache), want)
    assert newer != first and Path(newer, "model.keras").read_bytes() == b"n" * 301
    assert storage.fetch_dir(str(remote), str(cache)) == str(remote)   # local: as is


def test_upload_dir_writes_the_marker_last(tmp_path, monkeypatch):
    local = tmp_path / "run"
    write(local / "bundle.json", b"{}")
    write(local / "model.keras", b"m")
    write(local / "sub" / "x.csv", b"c")
    dest = tmp_path / "remote"
    write(dest / "bundle.json", b"old")
    order = []
    real = storage._copy_stream
    monkeypatch.setattr(storage, "_copy_stream",
                        lambda src, out, u, m: (order.append(Path(src.name).name), real(src, out, u, m)))
    storage.upload_dir(str(local), uri(dest), last="bundle.json")
    assert order[-1] == "bundle.json" and len(order) == 3
    assert (dest / "sub" / "x.csv").read_bytes() == b"c" and (dest / "bundle.json").read_bytes() == b"{}"


# --- list_inputs ---------------------------------------------------------------------------------

def _by_id(items) -> dict:
    return {it.video_id: (Path(it.path).name, it.label, it.speaker, it.actor, it.modality,
                          it.drop_reason) for it in items}


def test_list_inputs_uri_folder_matches_local(small_sample, tmp_path):
    local = list_inputs(str(small_sample))
    remote = list_inputs(uri(small_sample))
    assert _by_id(remote) == _by_id(local) and len(remote) == len(local) > 14
    assert all(it.path.startswith("file://") for it in remote)
    assert {it.path for it in remote} == {uri(it.path) for it in local}
    root = tmp_path / "tree"
    write(root / "Actor_01" / "01-01-03-01-01-01-01.mp4")
    write(root / ".hidden" / "01-01-03-01-01-01-03.mp4")
    write(root / "Actor_01" / ".x.mp4")
    write(root / "notes.txt")
    (single,) = list_inputs(uri(root))                    # hidden and non-media skipped
    assert single.label == "happy" and single.video_id == list_inputs(str(root))[0].video_id
    clip = root / "Actor_01" / "01-01-03-01-01-01-01.mp4"
    (one,) = list_inputs(uri(clip))
    assert one.path == uri(clip) and one.video_id == list_inputs(str(clip))[0].video_id


def test_list_inputs_uri_manifest_matches_local(tmp_path):
    write(tmp_path / "clips" / "x.mp4")
    write(tmp_path / "clips" / "y.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker\nclips/x.mp4,Fearful,spk1\n"
                                    "clips/y.wav,happy,spk2\nclips/missing.mp4,sad,spk2\n")
    local = list_inputs(str(tmp_path / "m.csv"))
    remote = list_inputs(uri(tmp_path / "m.csv"))
    assert _by_id(remote) == _by_id(local) and len(remote) == 3
    assert {it.path for it in remote} == {uri(tmp_path / "clips" / n)
                                          for n in ("x.mp4", "y.wav", "missing.mp4")}


def test_list_inputs_uri_errors(tmp_path):
    with pytest.raises(ValueError, match="globs are not supported on URIs"):
        list_inputs(uri(tmp_path) + "/*.mp4")
    with pytest.raises(FileNotFoundError, match="input not found"):
        list_inputs(uri(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        list_inputs(uri(tmp_path / "nothing.csv"))


# --- extraction of remote inputs -----------------------------------------------------------------

class _NeverCalled:
    opts = SimpleNamespace(max_file_mb=0.001)

    def extract(self, path, name=None):
        raise AssertionError("the extractor must not see this input")


def test_remote_input_size_and_missing_give_status_rows(tmp_path):
    from mer_ray.data.extraction import extract_input

    big = write(tmp_path / "big.mp4", b"x" * 5000)
    result = extract_input(_NeverCalled(), uri(big))
    assert result.clip["status"] == "too_large" and uri(big) in result.clip["error"]
    missing = extract_input(_NeverCalled(), uri(tmp_path / "gone.mp4"))
    assert missing.clip["status"] == "unreadable" and "gone.mp4" in missing.clip["error"]


def test_remote_input_is_extracted_like_the_local_file(mixed_archive):
    from mer_ray.data.extraction import extract_input
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    clip = mixed_archive["good"][0]
    ext = ClipExtractor(ExtractOptions(faces=False, rich_audio=False, audio_aug_copies=1))
    a, b = extract_input(ext, uri(clip)), extract_input(ext, uri(clip))
    assert a.clip["status"] == "ok" and a.clip["keyframes"] > 0
    # augmentation is seeded by the URI, not by the random temp file name
    assert a.clip["audio_aug_features"] == b.clip["audio_aug_features"]
    bad = extract_input(ext, uri(mixed_archive["bad"]["text_as_mp4"]))
    assert bad.clip["status"] == "not_media"
    assert "mer-ray-" not in (bad.clip["error"] or "")      # errors name the URI, not the copy


# --- jobs end to end ------------------------------------------------------------------------------

@pytest.mark.slow
def test_preprocess_file_uri_folder_to_file_uri_out(small_sample, ray_local, tmp_path):
    from mer_ray.config import PreprocessConfig
    from mer_ray.data.preprocess import run_preprocess

    out = tmp_path / "shards"
    summary = run_preprocess(PreprocessConfig(data_dir=uri(small_sample), out=uri(out),
                                              videos_per_shard=8))
    clips = pq.read_table(out / "clips").to_pandas()
    inputs = list_inputs(uri(small_sample))
    good = assert_one_row_per_input(clips, inputs, summary)
    assert (good.faces_found > 0).all()
    assert pq.read_table(out / "frames").num_rows == int(clips.faces_found.sum())
    again = run_preprocess(PreprocessConfig(data_dir=uri(small_sample), out=uri(out)))
    assert again["this_run"]["processed"] == 0 and again["inputs"] == len(inputs)


def test_predictor_loads_a_uri_bundle_from_the_node_cache(tiny_bundles, tmp_path, monkeypatch):
    from mer_ray.models.bundle import AudioPredictor, load_bundle_info

    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    remote = AudioPredictor(uri(tiny_bundles["audio"]))
    local = AudioPredictor(tiny_bundles["audio"])
    assert remote.run_dir == uri(tiny_bundles["audio"])
    assert remote.info.model_id == load_bundle_info(uri(tiny_bundles["audio"])).model_id
    x = np.random.default_rng(0).normal(size=(3, local.n_features)).astype(np.float32)
    np.testing.assert_allclose(remote.predict(x), local.predict(x), rtol=1e-5)
    (cached,) = (tmp_path / "cache" / "bundles").iterdir()
    assert {"bundle.json", "model.keras"} <= {p.name for p in cached.iterdir()}


def test_visual_init_from_a_uri_run_dir_or_keras_file(tiny_bundles, tmp_path, monkeypatch):
    """train-visual --init s3://.../run (or .../model.keras): fetched into the node cache."""
    from mer_ray.models.visual import init_visual_model

    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    faces = np.random.default_rng(1).integers(0, 255, (2, 200, 200, 3)).astype(np.float32)
    local = init_visual_model("tiny", "frozen", tiny_bundles["visual"])
    want = np.asarray(local(faces, training=False))
    for init in (uri(tiny_bundles["visual"]), uri(Path(tiny_bundles["visual"]) / "model.keras")):
        model = init_visual_model("tiny", "frozen", init)
        np.testing.assert_allclose(np.asarray(model(faces, training=False)), want, rtol=1e-5)
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {"bundles", "init"}
    with pytest.raises(FileNotFoundError):
        init_visual_model("tiny", "frozen", uri(tmp_path / "missing.keras"))


@pytest.mark.slow
def test_score_with_file_uri_models_inputs_and_out(mixed_archive, tiny_bundles, ray_local,
                                                   tmp_path):
    from mer_ray.config import RayConfig, ScoreConfig
    from mer_ray.models.bundle import load_bundle_info
    from mer_ray.score.pipeline import run_score

    source = tmp_path / "archive"
    shutil.copytree(mixed_archive["root"] / "good", source)
    shutil.copy(mixed_archive["bad"]["text_as_mp4"], source / "broken.mp4")
    cfg = ScoreConfig(source=uri(source), out=uri(tmp_path / "scores"),
                      visual=uri(tiny_bundles["visual"]), audio=uri(tiny_bundles["audio"]),
                      videos_per_shard=4, ray=RayConfig(num_cpus=2))
    summary = run_score(cfg)
    scores = pq.read_table(tmp_path / "scores" / "scores").to_pandas()
    assert len(scores) == summary["rows"] == len(mixed_archive["good"]) + 1
    assert scores.path.str.startswith("file://").all()
    ok = scores[~scores.path.str.endswith("broken.mp4")]
    assert set(ok.fusion_mode) == {"audio_visual"}
    assert scores.set_index(scores.path.str.rsplit("/", n=1).str[-1]).status["broken.mp4"] == "not_media"
    assert set(scores.visual_model_id) == {load_bundle_info(tiny_bundles["visual"]).model_id}
    run = json.loads((tmp_path / "scores" / "run.json").read_text())
    assert run["model_ids"]["audio"] == load_bundle_info(tiny_bundles["audio"]).model_id
    again = run_score(cfg)                                 # resume: model ids still match
    assert again["this_run"]["scored"] == 0 and again["rows"] == len(scores)
