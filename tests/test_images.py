import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import ConfigError, DataError
from genlab.io.grids import concat_images, label_rows, make_grid, save_gif, save_image
from genlab.io.images import read_image, resize, to_uint8


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip_is_exact(tmp_path, channels):
    torch.manual_seed(channels)
    pixels = torch.randint(0, 256, (channels, 9, 7), dtype=torch.uint8)
    path = save_image(pixels.float() / 255, tmp_path / "x.png")
    assert torch.equal(read_image(path), pixels)


def test_grid_geometry_and_tile_order():
    images = torch.stack([torch.full((1, 4, 5), i / 10) for i in range(7)])
    grid = make_grid(images, nrow=3, padding=2, pad_value=1.0)
    assert grid.shape == (1, 3 * (4 + 2) + 2, 3 * (5 + 2) + 2)
    for index in range(7):
        row, col = divmod(index, 3)
        top, left = 2 + row * 6, 2 + col * 7
        assert torch.all(grid[:, top:top + 4, left:left + 5] == index / 10)
    assert torch.all(grid[:, 0, :] == 1.0)  # padding
    assert torch.all(grid[:, 14:18, 16:21] == 1.0)  # the unused 9th tile


def test_rgba_is_composited_on_black_and_gray_is_detected(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (200, 100, 50, 0))
    rgba.putpixel((0, 0), (200, 100, 50, 255))
    rgba.save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (3, 4, 4)
    assert image[:, 0, 0].tolist() == [200, 100, 50] and image[:, 1, 1].tolist() == [0, 0, 0]
    Image.new("L", (5, 6), 77).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (1, 6, 5)
    assert read_image(tmp_path / "g.png", channels=3).shape == (3, 6, 5)
    assert read_image(tmp_path / "g.png", size=8).shape == (1, 8, 8)


def test_corrupt_or_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    save_image(torch.rand(1, 16, 16), bad)
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match=r"broken\.png"):
        read_image(bad)
    with pytest.raises(DataError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")


def test_resize_shapes_and_constant_images_stay_constant():
    constant = torch.full((2, 3, 10, 10), 0.25)
    out = resize(constant, (5, 20))
    assert out.shape == (2, 3, 5, 20)
    torch.testing.assert_close(out, torch.full_like(out, 0.25))
    assert resize(torch.rand(1, 8, 8), 4).shape == (1, 4, 4)


def test_gif_frames_and_boomerang(tmp_path):
    frames = [torch.full((1, 8, 8), i / 5) for i in range(5)]
    with Image.open(save_gif(frames, tmp_path / "a.gif")) as gif:
        assert gif.n_frames == 5
    with Image.open(save_gif(frames, tmp_path / "b.gif", boomerang=True)) as gif:
        assert gif.n_frames == 8


def test_scale_and_side_by_side(tmp_path):
    path = save_image(torch.rand(4, 1, 6, 6), tmp_path / "s.png", nrow=2, scale=3, padding=2)
    with Image.open(path) as image:
        assert image.size == (3 * (2 * 8 + 2), 3 * (2 * 8 + 2))
    both = concat_images([torch.rand(1, 10, 10), torch.rand(3, 6, 12)], gap=4)
    assert both.shape[0] == 3 and both.shape[2] >= 10 + 4 + 12


def test_out_of_range_or_misshapen_input_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        to_uint8(torch.tensor([-1.0, 1.0]))
    with pytest.raises(ConfigError, match="channels"):
        make_grid(torch.rand(2, 2, 4, 4))
    with pytest.raises(ConfigError, match="shape"):
        save_image(torch.rand(4, 4), tmp_path / "x.png")


def test_palette_images_are_gray_only_when_their_used_colours_are(tmp_path):
    gray = Image.new("L", (4, 3), 0)
    gray.putpixel((1, 1), 180)
    gray.convert("P").save(tmp_path / "gray_palette.png")
    assert Image.open(tmp_path / "gray_palette.png").mode == "P"
    assert read_image(tmp_path / "gray_palette.png")[0, 1, 1] == 180
    colour = Image.new("RGB", (4, 3), (10, 200, 30)).convert("P")
    colour.save(tmp_path / "colour_palette.png")
    assert read_image(tmp_path / "colour_palette.png").shape == (3, 3, 4)


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png").tolist() == [[[0, 100, 255]]]


def test_size_tuple_is_height_then_width_and_junk_is_a_data_error(tmp_path):
    save_image(torch.rand(3, 10, 10), tmp_path / "x.png")
    assert read_image(tmp_path / "x.png", channels=1, size=(4, 6)).shape == (1, 4, 6)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"junk\.png"):
        read_image(tmp_path / "junk.png")


def test_labels_sit_on_one_line_and_writes_leave_no_temporary_files(tmp_path):
    tall, short = torch.zeros(1, 20, 16), torch.zeros(1, 6, 16)  # wide enough for a one-letter label
    both = concat_images([tall, short], gap=2, labels=["A", "B"], pad_value=1.0)
    strip = both.shape[1] - 20
    # Labels occupy the same strip above both pictures; the short one is centred below it.
    assert both[:, :strip, :16].min() < 1 and both[:, :strip, 18:].min() < 1
    assert torch.all(both[:, strip + 7 : strip + 13, 18:] == 0)
    assert torch.all(both[:, strip : strip + 7, 18:] == 1)
    save_gif([torch.rand(3, 4, 4)] * 2, tmp_path / "out" / "a.gif")
    save_image(both, tmp_path / "out" / "b.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.gif", "b.png"]


def test_labels_of_different_ink_heights_get_strips_of_one_height():
    # "VAE" has no descender, "projector" has; strips used to be as tall as their own text, and torch.cat failed.
    pictures = [torch.zeros(1, 10, 60), torch.zeros(1, 10, 60)]
    joined = concat_images(pictures, gap=0, labels=["VAE", "projector"], pad_value=1.0)
    assert joined.shape[2] == 120 and joined.shape[1] > 10
    assert torch.all(joined[:, -10:, :] == 0)  # both pictures end on the same row


def _label_ink_columns(text: str) -> list[int]:
    picture = concat_images([torch.ones(1, 4, 120)], labels=[text], pad_value=1.0)
    return (picture[0, :-4] < 0.5).any(dim=0).nonzero().flatten().tolist()  # the label strip's inked columns


def _widest_blank_run(columns: list[int]) -> int:
    return max((b - a - 1 for a, b in itertools.pairwise(columns)), default=0)


def test_spaces_in_labels_show():
    # Pillow's default 10-px Aileron draws a 2-px space, as wide as the gaps inside words: "VAE samples" read
    # "VAEsamples" in the demo's picture. The word gap must be plainly wider than any gap between letters.
    spaced, joined = _label_ink_columns("A B"), _label_ink_columns("AB")
    assert (spaced[-1] - spaced[0]) - (joined[-1] - joined[0]) >= 3
    assert _widest_blank_run(_label_ink_columns("VAE samples")) >= _widest_blank_run(_label_ink_columns("VAEsamples")) + 2


def test_row_labels_are_written_beside_their_rows():
    grid = make_grid(torch.ones(6, 1, 20, 20), nrow=2, padding=2)  # 3 rows of 2 white images
    labelled = label_rows(grid, ["one", "", "three"], pad_value=1.0)
    column = labelled[:, :, : labelled.shape[2] - grid.shape[2]]
    assert column.shape[2] > 0 and torch.equal(labelled[:, :, column.shape[2]:], grid)  # the grid is untouched
    band = grid.shape[1] / 3
    ink_rows = (column < 0.5).any(dim=0).any(dim=1).nonzero().flatten()
    in_band = {int(row // band) for row in ink_rows}
    assert in_band == {0, 2}  # text in the first and third rows' bands, none in the unlabelled second
    with pytest.raises(ConfigError, match="label_rows"):
        label_rows(grid, [])


def test_a_label_wider_than_its_picture_widens_the_column_instead_of_being_cut():
    narrow = torch.ones(1, 10, 12)  # 12 px: "VAE samples" needs far more
    labelled = concat_images([narrow], labels=["VAE samples"], pad_value=1.0)
    ink = (labelled[0] < 0.5).any(dim=0).nonzero().flatten()
    assert labelled.shape[2] > 12 and int(ink.max()) < labelled.shape[2] - 1  # the text ends inside the picture
    picture_rows = labelled[:, -10:]
    assert torch.equal(picture_rows, torch.ones_like(picture_rows))  # the picture itself, padded with white
