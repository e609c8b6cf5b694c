"""Face crops stored encoded (mer_ray/media/crop_codec.py): round trips, formats, legacy raw
blobs, and the two readers (training frames, the score job's visual stage)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mer_ray.config import FACE_SIZE
from mer_ray.data.image_folders import load_faces
from mer_ray.media.crop_codec import (CROP_FORMAT, FACE_NBYTES, JPEG, PNG, RAW, as_stored,
                                      crop_format, decode_crop, decode_crops, encode_crop)


@pytest.fixture(scope="module")
def fer_crops(fer_validation: Path) -> np.ndarray:
    """Four real FER2013 faces as ingest-images makes them (grey, 200x200 RGB)."""
    paths = sorted(str(p) for p in (fer_validation / "happy").glob("*.jpg"))[:4]
    crops, ok = load_faces(paths, FACE_SIZE)
    assert ok.all()
    return crops


@pytest.fixture(scope="module")
def colour_crops(fer_crops: np.ndarray) -> np.ndarray:
    """The same faces with three different channels (a colour picture of natural structure)."""
    g = fer_crops[..., 0].astype(np.int16)
    return np.stack([g, 255 - g, g // 2 + 60], axis=-1).astype(np.uint8)


def halves() -> np.ndarray:
    """Left half pure red, right half pure blue: a BGR/RGB mix-up swaps them."""
    img = np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
    img[:, :FACE_SIZE // 2, 0] = 255
    img[:, FACE_SIZE // 2:, 2] = 255
    return img


@pytest.mark.real_data
def test_png_is_bit_exact(fer_crops, colour_crops):
    for crop in [*fer_crops, *colour_crops]:
        blob = encode_crop(crop, PNG)
        assert crop_format(blob) == PNG and len(blob) < FACE_NBYTES
        assert np.array_equal(decode_crop(blob), crop)


@pytest.mark.real_data
def test_jpeg_is_close_and_much_smaller(fer_crops, colour_crops):
    for crop in [*fer_crops, *colour_crops]:
        blob = encode_crop(crop, JPEG)
        back = decode_crop(blob)
        assert crop_format(blob) == JPEG and len(blob) < FACE_NBYTES / 5
        assert back.shape == crop.shape and back.dtype == np.uint8
        assert np.abs(back.astype(np.int16) - crop).mean() < 3


@pytest.mark.real_data
def test_grey_crops_stay_grey_and_cost_less(fer_crops, colour_crops):
    grey = encode_crop(fer_crops[0], CROP_FORMAT)
    back = decode_crop(grey)
    assert np.array_equal(back[..., 0], back[..., 1]) and np.array_equal(back[..., 0], back[..., 2])
    assert len(grey) < len(encode_crop(colour_crops[0], CROP_FORMAT))


@pytest.mark.parametrize("fmt", [PNG, JPEG, RAW])
def test_rgb_order_survives(fmt):
    back = decode_crop(encode_crop(halves(), fmt))
    half = FACE_SIZE // 2
    left, right = back[:, :half - 8].mean((0, 1)), back[:, half + 8:].mean((0, 1))
    assert left[0] > 240 and left[2] < 15          # red stays in channel 0
    assert right[2] > 240 and right[0] < 15        # blue stays in channel 2


def test_raw_blobs_of_older_shards_still_read():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
    raw = crop.tobytes()
    assert encode_crop(crop, RAW) == raw and crop_format(raw) == RAW
    assert np.array_equal(decode_crop(raw), crop)
    # raw pixels that begin like a JPEG (a (255, 216, 255) top-left pixel) are still pixels
    crop[0, 0] = (0xFF, 0xD8, 0xFF)
    assert np.array_equal(decode_crop(crop.tobytes()), crop)
    mixed = decode_crops([raw, encode_crop(crop, PNG), encode_crop(halves(), JPEG)])
    assert mixed.shape == (3, FACE_SIZE, FACE_SIZE, 3)
    assert np.array_equal(mixed[1], crop)


def test_bad_blobs_and_crops_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^face crops must be PNG, JPEG or raw .* got one of 7 ") \
            as garbage:
        decode_crop(b"garbage")
    assert "\n" not in str(garbage.value)
    with pytest.raises(ValueError, match="looks like jpeg but does not decode"):
        decode_crop(b"\xff\xd8\xff" + bytes(500))
    import cv2

    ok, small = cv2.imencode(".png", np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="decodes to 50x60x3, not 200x200x3"):
        decode_crop(small.tobytes())
    with pytest.raises(ValueError, match="must be 200x200x3 uint8 RGB; got 200x200 uint8"):
        encode_crop(np.zeros((FACE_SIZE, FACE_SIZE), np.uint8))
    with pytest.raises(ValueError, match="unknown crop format 'webp'"):
        encode_crop(halves(), "webp")


def test_visual_stage_reads_encoded_and_raw_crops_a_slice_at_a_time():
    from mer_ray.score.predictors import FACES_COL, face_crops

    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (4, FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
    rows = [[encode_crop(faces[0], PNG), faces[1].tobytes()], None, [encode_crop(faces[2], PNG),
                                                                     encode_crop(faces[3], PNG)]]
    column = pa.array(rows, pa.list_(pa.binary()))
    crops, counts = face_crops(column)
    assert counts == [2, 0, 2] and np.array_equal(crops(0, 4), faces)
    assert np.array_equal(crops(1, 3), faces[1:3])                  # only that slice decoded
    crops, counts = face_crops(column.slice(2))                     # offsets into the buffer
    assert counts == [2] and np.array_equal(crops(0, 2), faces[2:])
    raw = pa.array([[f.tobytes() for f in faces]], pa.list_(pa.binary()))
    got = face_crops(raw)[0](0, 4)                                  # all raw: no copy
    assert np.array_equal(got, faces)
    assert np.shares_memory(got, np.frombuffer(raw.flatten().buffers()[2], np.uint8))
    table = pa.table({FACES_COL: pa.array([[b"short"]], pa.list_(pa.binary()))})
    with pytest.raises(ValueError, match="bytes each"):
        face_crops(table.column(FACES_COL))[0](0, 1)


def test_training_reader_decodes_new_and_legacy_shards(tmp_path):
    """One shard of raw crops (as written before encoding) and one of encoded crops: the
    training reader gives back the same pixels for both (exact for raw and PNG)."""
    from support.synthetic import write_synthetic_shards
    from mer_ray.data.schema import FRAMES_DIR
    from mer_ray.data.splits import make_plan
    from mer_ray.train.data import SPLITS, iter_split_local, plan_data

    out = write_synthetic_shards(tmp_path / "s", actors=(2, 3), clips_per_class=1,
                                 frames_per_clip=1, shards=2)
    files = sorted((out / FRAMES_DIR).glob("*.parquet"))
    want = {}
    for i, path in enumerate(files):
        table = pq.read_table(path)
        faces = table["face"].to_pylist()
        for vid, blob in zip(table["video_id"].to_pylist(), faces):
            want[vid] = np.frombuffer(blob, np.uint8).reshape(FACE_SIZE, FACE_SIZE, 3)
        if i == 1:                                   # the second shard: encoded, as written now
            encoded = pa.array([encode_crop(want[v], PNG) for v in table["video_id"].to_pylist()],
                               pa.binary())
            pq.write_table(table.set_column(table.schema.get_field_index("face"), "face",
                                            encoded), path)
    plan, data = plan_data(str(out), "visual", lambda g: make_plan(g, "thesis"))
    got = {}
    for split in SPLITS:
        for batch in iter_split_local(data, plan, split):
            got.update(zip(batch["video_id"], batch["x"]))
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[v], want[v]) for v in want)


def test_as_stored_is_what_readers_get():
    crops = np.stack([halves(), halves()[::-1]])
    stored = as_stored(crops)
    assert np.array_equal(stored, decode_crops([encode_crop(c) for c in crops]))
    assert np.array_equal(as_stored(crops, PNG), crops)
