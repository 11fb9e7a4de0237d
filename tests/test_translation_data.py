"""Data for image-to-image translation: paired tasks made from images, pairs from side-by-side files and from
two folders, unpaired domains (two folders, or two classes of a labelled set), and the errors of each."""
import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import Dataset, load_dataset
from genlab.data.domains import load_domain, load_domains, split_spec, unpaired
from genlab.data.pairs import HOLE_VALUE, load_folder_pairs, load_side_by_side, make_pairs, sobel_edges, with_hole
from genlab.data.registry import resize_images
from genlab.errors import DataError


def square(size: int = 16, value: int = 255, channels: int = 1) -> torch.Tensor:
    """One uint8 image: a bright square (rows/columns 4..11) on black."""
    image = torch.zeros(1, channels, size, size, dtype=torch.uint8)
    image[:, :, 4:12, 4:12] = value
    return image


def save_png(path, array: np.ndarray) -> None:
    Image.fromarray(array.astype(np.uint8)).save(path)


# ----- paired tasks -----
def test_sobel_edges_mark_the_outline_and_nothing_else():
    edges = sobel_edges(square())[0, 0] > 0
    assert edges[4, 4:12].all() and edges[11, 4:12].all() and edges[4:12, 4].all()  # the square's border rows and columns
    assert not edges[6:10, 6:10].any()  # its flat inside
    assert not edges[0, :].any() and not edges[:, 0].any()  # the frame: borders are replicated, no false edge there
    assert not sobel_edges(torch.full((1, 1, 8, 8), 200, dtype=torch.uint8)).any()  # a flat image has none


def test_the_edge_threshold_is_a_contrast():
    """Kx = [1 2 1]ᵀ[−1 0 1]/4: a sharp step of contrast c has gradient magnitude c, compared with the threshold."""
    assert not sobel_edges(square(value=round(0.2 * 255)), threshold=0.25).any()
    assert sobel_edges(square(value=round(0.3 * 255)), threshold=0.25).any()


def test_rgb_edges_are_one_channel_from_the_luma():
    edges = sobel_edges(square(channels=3))
    assert edges.shape == (1, 1, 16, 16) and edges.dtype == torch.uint8 and set(edges.unique().tolist()) == {0, 255}


def test_paired_tasks_keep_the_images_as_targets_with_their_labels():
    data = Dataset(torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8), torch.arange(6), tuple("abcdef"), "rgb")
    for task, channels in (("edges", 1), ("masked", 3), ("gray", 1)):
        pairs = make_pairs(data, task)
        assert torch.equal(pairs.images, data.images) and torch.equal(pairs.labels, data.labels)
        assert pairs.source_shape == (channels, 16, 16) and pairs.info()["source_shape"] == [channels, 16, 16]
    masked = make_pairs(data, "masked").sources
    assert (masked[:, :, 4:12, 4:12] == HOLE_VALUE).all()  # the centred hole: half the side
    assert torch.equal(masked[:, :, :4], data.images[:, :, :4]) and torch.equal(masked[:, :, 12:], data.images[:, :, 12:])
    gray = make_pairs(data, "gray").sources.float()
    luma = (data.images.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert (gray - luma).abs().max() <= 0.5 + 1e-4


def test_task_errors_are_one_line_data_errors():
    gray_data = Dataset(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), name="graysets")
    with pytest.raises(DataError, match=r"task 'gray' .* needs RGB images, this data has 1 channel"):
        make_pairs(gray_data, "gray")
    with pytest.raises(DataError, match="unknown paired task 'sketch'"):
        make_pairs(gray_data, "sketch")
    assert with_hole(gray_data.images, 0.5).shape == gray_data.images.shape


def test_a_dataset_checks_its_sources_and_carries_them_through_subset_and_resize():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataError, match="sources must be uint8 images"):
        Dataset(images, name="x", sources=torch.zeros(3, 1, 8, 8, dtype=torch.uint8))  # one short
    with pytest.raises(DataError, match="sources must be uint8 images"):
        Dataset(images, name="x", sources=torch.zeros(4, 1, 8, 9, dtype=torch.uint8))  # another size
    pairs = Dataset(images, name="x", sources=torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 8, 8).contiguous())
    part = pairs.subset([1, 3])
    assert part.sources[:, 0, 0, 0].tolist() == [1, 3] and part.source_shape == (3, 8, 8)
    assert resize_images(pairs, (16, 16)).source_shape == (3, 16, 16)


# ----- pairs from files -----
@pytest.fixture
def side_by_side(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i in range(3):
        a = np.full((8, 8), 10 * i, dtype=np.uint8)
        b = np.full((8, 8), 200 + i, dtype=np.uint8)
        save_png(folder / f"{i}.png", np.concatenate([a, b], axis=1))
    return folder


def test_side_by_side_files_split_into_input_and_target(side_by_side):
    pairs = load_side_by_side(side_by_side)
    assert pairs.images.shape == pairs.sources.shape == (3, 1, 8, 8)
    assert pairs.sources[:, 0, 0, 0].tolist() == [0, 10, 20] and pairs.images[:, 0, 0, 0].tolist() == [200, 201, 202]
    reverse = load_side_by_side(side_by_side, direction="b2a")
    assert torch.equal(reverse.sources, pairs.images) and torch.equal(reverse.images, pairs.sources)
    assert load_side_by_side(side_by_side, image_size=4).source_shape == (1, 4, 4)


def test_side_by_side_errors_name_the_file(side_by_side, tmp_path):
    save_png(side_by_side / "odd.png", np.zeros((8, 15)))
    with pytest.raises(DataError, match=r"odd\.png: 15 pixels wide, expected a side-by-side A\|B image of even width"):
        load_side_by_side(side_by_side)
    (side_by_side / "odd.png").unlink()
    save_png(side_by_side / "big.png", np.zeros((10, 20)))
    with pytest.raises(DataError, match=r"big\.png: 10×10 \(height×width\) but 0\.png is 8×8"):
        load_side_by_side(side_by_side)
    assert len(load_side_by_side(side_by_side, image_size=8)) == 4  # resized, it fits
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images in this folder of side-by-side"):
        load_side_by_side(tmp_path / "empty")
    with pytest.raises(DataError, match=r"nowhere: folder of side-by-side A\|B images not found"):
        load_side_by_side(tmp_path / "nowhere")


def test_two_folders_pair_by_file_name(tmp_path):
    inputs, targets = tmp_path / "inputs", tmp_path / "targets"
    inputs.mkdir()
    targets.mkdir()
    for i, name in enumerate(["b", "a", "c"]):
        save_png(inputs / f"{name}.png", np.full((6, 6), i))
        Image.fromarray(np.full((6, 6, 3), 100 + i, dtype=np.uint8)).save(targets / f"{name}.bmp")  # another format
    pairs = load_folder_pairs(inputs, targets)
    # sorted by name: a, b, c; each input with its own target (input i ↔ target 100 + i)
    assert pairs.sources[:, 0, 0, 0].tolist() == [1, 0, 2] and pairs.images[:, 0, 0, 0].tolist() == [101, 100, 102]
    assert pairs.source_shape == (1, 6, 6) and pairs.image_shape == (3, 6, 6)  # the channels of each folder


def test_two_folders_errors_name_the_file(tmp_path):
    inputs, targets = tmp_path / "inputs", tmp_path / "targets"
    inputs.mkdir()
    targets.mkdir()
    for name in ("a", "b"):
        save_png(inputs / f"{name}.png", np.zeros((6, 6)))
        save_png(targets / f"{name}.png", np.zeros((6, 6)))
    save_png(inputs / "lonely.png", np.zeros((6, 6)))
    with pytest.raises(DataError, match=r"lonely\.png: no partner in .*targets \(expected .*targets/lonely\.\* with the same name\)"):
        load_folder_pairs(inputs, targets)
    (inputs / "lonely.png").rename(targets / "lonely.png")  # now the target lacks an input
    with pytest.raises(DataError, match=r"targets/lonely\.png: no partner in .*inputs"):
        load_folder_pairs(inputs, targets)
    (targets / "lonely.png").unlink()
    save_png(targets / "b.png", np.zeros((7, 6)))
    with pytest.raises(DataError, match=r"inputs/b\.png: 6×6 .* but its partner .*targets/b\.png is 7×6"):
        load_folder_pairs(inputs, targets)
    assert load_folder_pairs(inputs, targets, image_size=6).image_shape == (1, 6, 6)
    save_png(targets / "b.jpg", np.zeros((6, 6)))
    with pytest.raises(DataError, match=r"same name \(b\.\w+\)"):
        load_folder_pairs(inputs, targets)


# ----- unpaired domains -----
def test_a_class_of_a_labelled_set_is_a_domain_by_name_or_index():
    test = load_dataset("fashion-mnist-mini", split="test")
    sneakers = load_domain("fashion-mnist-mini:sneaker", split="test")
    assert len(sneakers) == int((test.labels == 7).sum()) == 100 and sneakers.labels is None
    assert torch.equal(sneakers.images, test.images[test.labels == 7])
    for spelling in ("fashion-mnist-mini:Ankle boot", "fashion-mnist-mini:ankle-boot", "fashion-mnist-mini:9"):
        assert torch.equal(load_domain(spelling, split="test").images, test.images[test.labels == 9])
    assert split_spec("fashion-mnist-mini") == ("fashion-mnist-mini", None)
    assert split_spec("fashion-mnist-mini:ankle-boot") == ("fashion-mnist-mini", "ankle-boot")


def test_domain_errors(tmp_path):
    with pytest.raises(DataError, match="unknown class 'boots'; the classes of 'fashion-mnist-mini' are: T-shirt/top"):
        load_domain("fashion-mnist-mini:boots", split="test")
    with pytest.raises(DataError, match="class 12 is out of range"):
        load_domain("fashion-mnist-mini:12", split="test")
    empty = tmp_path / "labelled.npz"
    np.savez(empty, images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 0, 1, 1]), classes=np.array(["x", "y", "z"]))
    with pytest.raises(DataError, match=r"no images of class 'z'.*a domain needs at least one image"):
        load_domain(f"{empty}:z")
    unlabelled = tmp_path / "plain.npz"
    np.savez(unlabelled, images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="has no classes to choose from"):
        load_domain(f"{unlabelled}:0")
    assert len(load_domain(unlabelled)) == 4  # the whole set is a domain
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_domain(tmp_path / "nothing")


def test_unpaired_repeats_the_shorter_domain_in_shuffled_passes():
    a = Dataset(torch.arange(3, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 8, 8).contiguous(), name="a")
    b = Dataset(torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 3, 8, 8).contiguous(), name="b")
    both = unpaired(a, b, seed=0)
    assert len(both) == 8 and both.source_shape == (1, 8, 8) and both.image_shape == (3, 8, 8)
    assert torch.equal(both.images, b.images)  # the larger domain as it is
    counts = torch.bincount(both.sources[:, 0, 0, 0].long(), minlength=3).tolist()
    assert sorted(counts) == [2, 3, 3]  # whole passes first: each image of A used as often as any other, ±1
    assert torch.equal(unpaired(a, b, seed=0).sources, both.sources)  # the seed fixes the shuffle
    with pytest.raises(DataError, match=r"domain A .* 8×8 images and domain B .* 4×4; give both one size"):
        unpaired(a, Dataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), name="small"))


def test_two_classes_make_an_unpaired_dataset():
    both = load_domains("fashion-mnist-mini:sneaker", "fashion-mnist-mini:ankle-boot", split="test")
    assert len(both) == 100 and both.name == "fashion-mnist-mini:sneaker to fashion-mnist-mini:ankle-boot"
    test = load_dataset("fashion-mnist-mini", split="test")
    assert torch.equal(both.images, test.images[test.labels == 9])
