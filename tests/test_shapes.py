"""The coloured-shapes data set (helpers/datasets/shapes.py): determinism, labels that match the pixels, the distances the
shapes are drawn from, and the data spec."""
import numpy as np
import pytest
import torch

from helpers.datasets.images import load_images
from helpers.datasets.shapes import COLOURS, SHAPES, attributes, load_shapes, signed_distance


def test_deterministic_per_index_and_split():
    (a, la, classes), (b, lb, _) = load_shapes(32, "train", num=20), load_shapes(32, "train", num=10)
    assert torch.equal(a[:10], b) and torch.equal(la[:10], lb)
    assert not torch.equal(load_shapes(32, "test", num=10)[0], b)
    big, lbig, _ = load_shapes(64, "train", num=10)  # the same scene at another size: same labels
    assert torch.equal(lbig, lb) and big.shape == (10, 3, 64, 64)
    assert classes == len(SHAPES) * len(COLOURS) == 18
    assert a.min() >= -1 and a.max() <= 1


def test_every_label_is_the_colour_in_the_pixels():
    """Pixels fully inside the shape have exactly the label's palette colour; no pixel has another palette colour
    (the background tints are muted), so the label is what is drawn."""
    images, labels, _ = load_shapes(32, "train", num=60)
    palette = torch.tensor(list(COLOURS.values())) * 2 - 1  # in [-1, 1]
    for image, label in zip(images, labels):
        pixels = image.reshape(3, -1).T
        matches = [(pixels - c).abs().max(1).values.lt(1e-5).sum().item() for c in palette]
        colour = int(label) % len(COLOURS)
        assert matches[colour] >= 10, attributes(int(label))
        assert sum(matches) == matches[colour]
    assert set(labels.tolist()) >= set(range(0, 18, 7))  # shapes and colours both vary


def test_signed_distances():
    r = 0.2
    zero = np.zeros(1)
    for shape in range(3):
        assert signed_distance(shape, zero, zero, r)[0] < 0  # the centre is inside
        assert signed_distance(shape, zero + 0.45, zero, r)[0] > 0
    assert signed_distance(0, np.array([0.3]), zero, r)[0] == pytest.approx(0.1)  # circle: |p| - r
    assert signed_distance(1, zero, np.array([0.17]), r)[0] == pytest.approx(0.0, abs=1e-12)  # square's edge
    h = 0.2 * 1.2 * np.sqrt(3) / 2  # the triangle's half side: its vertices are on the boundary
    assert signed_distance(2, np.array([h]), np.array([-h / np.sqrt(3)]), r)[0] == pytest.approx(0.0, abs=1e-12)


def test_the_data_spec_and_its_errors():
    data = load_images("shapes:16:test")
    assert data.shape == (3, 16, 16) and len(data) == 2000 and data.num_classes == 18
    with pytest.raises(ValueError, match="shapes needs a size"):
        load_images("shapes")
    with pytest.raises(ValueError, match="the size must be one of 16, 32, 64, 128"):
        load_images("shapes:33")
    with pytest.raises(ValueError, match="the split must be one of train, test"):
        load_images("shapes:32:valid")
