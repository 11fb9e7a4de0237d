import pytest
from PIL import Image

from genlab.errors import DataError
from genlab.io.plots import plot_metrics, read_metrics_csv


def test_reads_columns_and_empty_cells(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,D/loss,D_reg/loss,time\n1,0.1,2.0,,0.5\n2,0.2,1.5,0.3,1.0\n")
    data = read_metrics_csv(path)
    assert data["step"] == [1.0, 2.0] and data["D/loss"] == [2.0, 1.5]
    assert data["D_reg/loss"][0] != data["D_reg/loss"][0]  # NaN
    assert data["D_reg/loss"][1] == 0.3


def test_plot_has_one_panel_per_metric(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = "\n".join(f"{s},{s / 10},{100 / s},{s % 7},,{s}" for s in range(1, 60))
    path.write_text("step,epoch,vae/loss,vae/kl,vae/extra,time\n" + rows + "\n")
    one = plot_metrics(path, tmp_path / "one.png", columns=["vae/loss"])
    three = plot_metrics(path, tmp_path / "all.png")
    with Image.open(one) as a, Image.open(three) as b:
        assert b.size[0] > a.size[0] and b.size[1] > a.size[1]  # 2×2 panels vs 1


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_metrics_csv(tmp_path / "missing.csv")
    path = tmp_path / "m.csv"
    path.write_text("step,loss\n1,abc\n")
    with pytest.raises(DataError, match="'loss'"):
        read_metrics_csv(path)
    path.write_text("step,loss\n1,2\n")
    with pytest.raises(DataError, match="fewer than two rows"):
        plot_metrics(path, tmp_path / "x.png")
    with pytest.raises(DataError, match="no column"):
        plot_metrics(path, tmp_path / "x.png", columns=["nope"])
