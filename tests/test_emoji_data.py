"""The emoji datasets (genlab.data.emoji): fetching with npm, the pinned checksum, compositing, the split, loading, pairs.

Everything runs on a tiny stand-in tarball made here with Pillow; never the network, never the real npm.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli.main import main
from genlab.data import emoji, sources
from genlab.errors import DataError

# Stand-in emoji: (code points, category, skin-tone variants). Split by the real rule (SHA-256 of the code points):
# 1F603, 1F436, 26BD, 1F4A1 and 1F385 (with its variants) fall in train, 1F355 and 1F30D in test (pinned below).
FAMILIES = [
    ("1F603", "Smileys & Emotion", ()),
    ("1F385", "People & Body", ("1F3FB", "1F3FF")),
    ("1F436", "Animals & Nature", ()),
    ("1F355", "Food & Drink", ()),
    ("1F30D", "Travel & Places", ()),
    ("26BD", "Activities", ()),
    ("1F4A1", "Objects", ()),
    ("1F3FB", "Component", ()),  # a skin-tone swatch: left out
]
NO_GOOGLE_IMAGE = "1F436"  # drawn in the twitter stand-in only


def colour_of(code: str) -> tuple[int, int, int]:
    """A colour that identifies each stand-in image."""
    digest = hashlib.sha256(code.encode()).digest()
    return digest[0], digest[1], digest[2]


def rgba_image(code: str, style: str) -> np.ndarray:
    """64×64 RGBA: opaque on the left half, transparent in the right quarter, alpha 128 in columns 32..47."""
    red, green, blue = colour_of(code + style)
    pixels = np.zeros((64, 64, 4), dtype=np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = red, green, blue
    pixels[:, :32, 3] = 255
    pixels[:, 32:48, 3] = 128
    pixels[:, 48:, 3] = 0
    return pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_tarball(path: Path, style: str, *, extra: list[tarfile.TarInfo] | None = None, skip_json: bool = False) -> Path:
    entries = []
    for code, category, tones in FAMILIES:
        drawn = style == "twitter" or code != NO_GOOGLE_IMAGE
        variants = {tone: {"unified": f"{code}-{tone}", "image": f"{code.lower()}-{tone.lower()}.png", f"has_img_{style}": True}
                    for tone in tones}
        entries.append({"unified": code, "image": f"{code.lower()}.png", "category": category, f"has_img_{style}": drawn,
                        "skin_variations": variants})
    if style == "google":
        entries.reverse()  # another order than the twitter stand-in: pairs must go by code point
    with tarfile.open(path, "w:gz") as archive:
        if not skip_json:
            add_file(archive, "package/emoji.json", json.dumps(entries).encode())
        add_file(archive, "package/LICENSE", b"MIT")
        for entry in entries:
            for item in (entry, *entry["skin_variations"].values()):
                if item[f"has_img_{style}"]:
                    add_file(archive, f"package/img/{style}/64/{item['image']}", png_bytes(rgba_image(item["unified"], style)))
            add_file(archive, f"package/img/{style}/32/1f603.png", b"not read")
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def pin(monkeypatch, name: str, path: Path) -> None:
    """Pin the stand-in's hash and size in place of the real package's."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(emoji.PACKAGES, name, dataclasses.replace(emoji.PACKAGES[name], sha256=digest, size=path.stat().st_size))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """genlab's data cache in tmp_path, and no other place to find data in."""
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", ())
    return tmp_path / "cache" / "genlab"


@pytest.fixture
def twitter_tgz(tmp_path, monkeypatch, cache):
    path = make_tarball(tmp_path / "emoji-datasource-twitter-16.0.0.tgz", "twitter")
    pin(monkeypatch, "emoji-twitter", path)
    return path


@pytest.fixture
def google_tgz(tmp_path, monkeypatch, cache):
    path = make_tarball(tmp_path / "emoji-datasource-google-16.0.0.tgz", "google")
    pin(monkeypatch, "emoji-google", path)
    return path


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# ----------------------------------------------------------------------------- compositing
def test_composite_matches_a_hand_computation():
    pixels = np.array([[[200, 100, 50, 255],  # opaque: itself
                        [200, 100, 50, 0],  # transparent: the background
                        [200, 100, 50, 128],  # (200·128 + 255·127)/255 = 227.39 → 227; 177.20 → 177; 152.10 → 152
                        [200, 0, 10, 2],  # (200·2 + 255·253)/255 = 254.57 → 255 (rounded, not truncated); 253; 253.08 → 253
                        [0, 0, 0, 100]]], dtype=np.uint8)  # 255·155/255 = 155 exactly
    expected = [[[200, 100, 50], [255, 255, 255], [227, 177, 152], [255, 253, 253], [155, 155, 155]]]
    assert emoji.composite(pixels).tolist() == expected
    assert emoji.composite(pixels, background=(0, 0, 0))[0, 2].tolist() == [100, 50, 25]  # 200·128/255 = 100.39, 50.20, 25.10


def test_composite_agrees_with_float_rounding_everywhere():
    rgb, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    pixels = np.stack([rgb, rgb, rgb, alpha], axis=-1).astype(np.uint8)
    exact = np.rint(rgb * alpha / 255 + 255 * (1 - alpha / 255))
    assert np.array_equal(emoji.composite(pixels)[..., 0], exact.astype(np.uint8))


def test_decoded_images_are_composited_on_white(twitter_tgz):
    result = emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    dataset, codes = emoji.load_emoji_with_codes("emoji-twitter", "train")
    row = codes.tolist().index("1F603")
    red, green, blue = colour_of("1F603twitter")
    picture = dataset.images[row].permute(1, 2, 0).numpy()
    assert picture[5, 5].tolist() == [red, green, blue]  # opaque
    assert picture[5, 60].tolist() == [255, 255, 255]  # transparent
    assert picture[5, 40].tolist() == [(c * 128 + 255 * 127 + 127) // 255 for c in (red, green, blue)]
    assert result.paths["train"] == dataset_path(result, "train")


def dataset_path(result: emoji.EmojiResult, split: str) -> Path:
    return emoji.find_npz(result.name, split)


# ----------------------------------------------------------------------------- checksum, npm
def test_a_checksum_mismatch_names_the_file_and_both_hashes(twitter_tgz, monkeypatch, cache):
    actual = hashlib.sha256(twitter_tgz.read_bytes()).hexdigest()
    wrong = "ab" * 32
    monkeypatch.setitem(emoji.PACKAGES, "emoji-twitter", dataclasses.replace(emoji.PACKAGES["emoji-twitter"], sha256=wrong))
    with pytest.raises(DataError) as error:
        emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    message = one_line(error)
    assert str(twitter_tgz) in message and wrong in message and actual in message and "SHA-256 mismatch" in message
    assert not cache.exists()  # nothing written


def test_a_missing_tarball_is_named(tmp_path, cache):
    with pytest.raises(DataError, match=r"nowhere\.tgz: file not found, expected emoji-datasource-google-16\.0\.0\.tgz"):
        emoji.get_emoji("emoji-google", tmp_path / "nowhere.tgz", progress=False)


def test_without_npm_the_error_says_to_install_it_or_use_from(tmp_path, monkeypatch, cache):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DataError) as error:
        emoji.get_emoji("emoji-twitter", progress=False)
    message = one_line(error)
    assert "npm not found" in message and "install" in message and "--from emoji-datasource-twitter-16.0.0.tgz" in message
    assert main(["data", "get", "emoji-twitter", "--no-progress"]) == 2  # the CLI turns it into one line and code 2


def fake_npm(folder: Path, script: str) -> None:
    folder.mkdir(exist_ok=True)
    npm = folder / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)


def test_a_failing_npm_is_reported_with_its_reason(tmp_path, monkeypatch, cache):
    fake_npm(tmp_path / "bin", 'echo "npm error code E404" >&2\necho "npm error 404 Not Found - emoji" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(DataError) as error:
        emoji.get_emoji("emoji-twitter", progress=False)
    message = one_line(error)
    assert "`npm pack emoji-datasource-twitter@16.0.0` failed (exit 1: npm error code E404)" in message and "--from" in message


def test_npm_pack_is_run_in_a_temporary_folder_and_its_tarball_used(twitter_tgz, tmp_path, monkeypatch, cache):
    log = tmp_path / "npm-args.txt"
    fake_npm(tmp_path / "bin", f'echo "$PWD" "$@" > "{log}"\ncp "{twitter_tgz}" "$PWD/"\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    result = emoji.get_emoji("emoji-twitter", progress=False)
    folder, *arguments = log.read_text().split()
    assert arguments[:2] == ["pack", "emoji-datasource-twitter@16.0.0"]
    assert "genlab-emoji-" in folder and not Path(folder).exists()  # a temporary folder, removed afterwards
    assert sum(result.counts["train"].values()) + sum(result.counts["test"].values()) == 9


# ----------------------------------------------------------------------------- the tarball's contents
def test_links_and_oversized_members_are_refused(tmp_path, monkeypatch, cache):
    link = tarfile.TarInfo("package/img/twitter/64/1f9ff.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    path = make_tarball(tmp_path / "links.tgz", "twitter", extra=[link])
    pin(monkeypatch, "emoji-twitter", path)
    with pytest.raises(DataError, match=r"1f9ff\.png must be a regular file .* got a link or folder"):
        emoji.get_emoji("emoji-twitter", path, progress=False)
    monkeypatch.setattr(emoji, "MAX_PNG_BYTES", 64)
    path = make_tarball(tmp_path / "big.tgz", "twitter")
    pin(monkeypatch, "emoji-twitter", path)
    with pytest.raises(DataError, match=r"must be a regular file of at most 64 bytes"):
        emoji.get_emoji("emoji-twitter", path, progress=False)


def test_names_with_other_parts_are_never_read(tmp_path, monkeypatch, cache):
    sneaky = tarfile.TarInfo("package/img/twitter/64/../../../emoji.json")
    sneaky.size = 3
    path = make_tarball(tmp_path / "sneaky.tgz", "twitter", extra=[sneaky], skip_json=True)
    pin(monkeypatch, "emoji-twitter", path)
    with pytest.raises(DataError, match=r"sneaky\.tgz: no package/emoji\.json"):
        emoji.get_emoji("emoji-twitter", path, progress=False)


def test_an_unknown_category_is_refused(tmp_path, monkeypatch, cache):
    monkeypatch.setattr(emoji, "EMOJI_CLASSES", emoji.EMOJI_CLASSES[1:])
    path = make_tarball(tmp_path / "t.tgz", "twitter")
    pin(monkeypatch, "emoji-twitter", path)
    with pytest.raises(DataError, match=r"category 'Smileys & Emotion', expected one of People & Body"):
        emoji.get_emoji("emoji-twitter", path, progress=False)


# ----------------------------------------------------------------------------- the split
def test_the_split_rule_is_pinned():
    assert [emoji.split_of(code) for code in ("1F600", "1F603", "1F385", "1F30D", "1F355")] == ["test", "train", "train", "test", "test"]
    assert emoji.split_of("1f600") == "test"  # the case of the hex digits does not count
    codes = [f"{value:X}" for value in range(0x1F300, 0x1F700)]
    share = sum(emoji.split_of(code) == "test" for code in codes) / len(codes)
    assert 0.07 < share < 0.13  # about TEST_PERCENT


def test_the_split_is_deterministic_disjoint_and_keeps_variants_with_their_emoji(twitter_tgz, google_tgz):
    first = emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    arrays = {split: dict(np.load(first.paths[split])) for split in emoji.SPLITS}
    emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    for split in emoji.SPLITS:
        again = np.load(first.paths[split])
        assert all(np.array_equal(arrays[split][key], again[key]) for key in ("images", "labels", "unified"))
    train, test = (set(arrays[split]["unified"].tolist()) for split in emoji.SPLITS)
    assert not train & test
    assert train == {"1F603", "1F385", "1F385-1F3FB", "1F385-1F3FF", "1F436", "26BD", "1F4A1"}
    assert test == {"1F355", "1F30D"}
    emoji.get_emoji("emoji-google", google_tgz, progress=False)
    assert set(emoji.load_emoji_with_codes("emoji-google", "test")[1].tolist()) == test  # the same split in both styles


# ----------------------------------------------------------------------------- loading
def test_before_get_load_dataset_says_to_run_it(cache):
    with pytest.raises(DataError) as error:
        genlab.load_dataset("emoji-twitter", split="train")
    assert one_line(error).endswith("run `genlab data get emoji-twitter`")
    assert genlab.data.dataset_info("emoji-twitter")["location"] == "not present (run `genlab data get emoji-twitter`)"


def test_load_dataset_gives_rgb_64_images_with_category_labels(twitter_tgz):
    emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    train = genlab.load_dataset("emoji-twitter", split="train")
    test = genlab.load_dataset("emoji-twitter", split="test")
    assert train.images.shape == (7, 3, 64, 64) and train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes == emoji.EMOJI_CLASSES and len(train.classes) == 9 and "Component" not in train.classes
    codes = emoji.load_emoji_with_codes("emoji-twitter", "train")[1].tolist()
    category = {code: name for code, name, _ in FAMILIES}
    names = [train.classes[label] for label in train.labels.tolist()]
    assert names == [category[code.split("-")[0]] for code in codes]
    assert names.count("People & Body") == 3  # 1F385 and its two skin tones; the 1F3FB swatch itself is dropped
    assert [test.classes[label] for label in test.labels.tolist()] == ["Food & Drink", "Travel & Places"]
    assert genlab.load_dataset("emoji-twitter", split="test", image_size=32).images.shape == (2, 3, 32, 32)


def test_an_image_missing_in_a_style_is_left_out(google_tgz):
    result = emoji.get_emoji("emoji-google", google_tgz, progress=False)
    assert result.counts["train"]["Animals & Nature"] == 0 and sum(result.counts["train"].values()) == 6


# ----------------------------------------------------------------------------- the command
def test_data_get_from_a_tarball_end_to_end(twitter_tgz, cache, capsys):
    assert main(["data", "get", "emoji-twitter", "--from", str(twitter_tgz), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(cache / "emoji-twitter" / "emoji-twitter-train.npz") in out and "emoji-twitter-test.npz" in out
    assert "People & Body: 3" in out and "Travel & Places: 1" in out and "CC-BY 4.0" in out
    assert len(genlab.load_dataset("emoji-twitter", split="train")) == 7
    assert main(["data", "get", "mnist", "--from", str(twitter_tgz)]) == 2  # --from is for the emoji sets only


# ----------------------------------------------------------------------------- pairs
def test_pairs_match_by_code_point(twitter_tgz, google_tgz):
    emoji.get_emoji("emoji-twitter", twitter_tgz, progress=False)
    emoji.get_emoji("emoji-google", google_tgz, progress=False)
    pairs = emoji.load_emoji_pairs("train")
    twitter_codes = emoji.load_emoji_with_codes("emoji-twitter", "train")[1].tolist()
    expected = [code for code in twitter_codes if code != NO_GOOGLE_IMAGE]
    assert len(pairs) == len(expected) == 6 and pairs.sources.shape == pairs.images.shape == (6, 3, 64, 64)
    for row, code in enumerate(expected):  # each image's opaque colour says which emoji and style it is
        assert pairs.sources[row, :, 0, 0].tolist() == list(colour_of(code + "twitter"))
        assert pairs.images[row, :, 0, 0].tolist() == list(colour_of(code + "google"))
    reverse = emoji.load_emoji_pairs("test", source="emoji-google", target="emoji-twitter")
    assert reverse.sources[0, :, 0, 0].tolist() == list(colour_of("1F30Dgoogle"))  # google's order: reversed
    index_a, index_b = emoji.pair_indices(["A", "B", "C"], ["C", "A"])
    assert index_a.tolist() == [0, 2] and index_b.tolist() == [1, 0]
