"""UGSNet on the CPU with a tiny configuration (skipped without torch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gbaugs.errors import InputDataError  # noqa: E402
from gbaugs.ugsnet import data as ugs_data  # noqa: E402
from gbaugs.ugsnet.config import (  # noqa: E402
    AdaptConfig,
    NetConfig,
    TrainConfig,
    paper_net,
    tiny_net,
)
from gbaugs.ugsnet.inference import predict_array, predict_geotiff, predict_mosaic  # noqa: E402
from gbaugs.ugsnet.losses import IGNORE, dice_loss, ugs_loss  # noqa: E402
from gbaugs.ugsnet.network import (  # noqa: E402
    Backbone,
    Bottleneck,
    Discriminator,
    EnhancedCoordinateAttention,
    UGSNet,
)
from gbaugs.ugsnet.points import (  # noqa: E402
    most_uncertain_cells,
    point_sample,
    training_points,
    uncertainty,
)
from gbaugs.ugsnet.synthetic import make_scene, make_tiles  # noqa: E402
from gbaugs.ugsnet.training import (  # noqa: E402
    adapt,
    adversarial_step,
    load_checkpoint,
    load_model,
    pretrain,
)

FAST = TrainConfig(epochs=10, batch_size=4, crop=96, lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_tiles(tmp_path_factory.mktemp("ugset") / "set", n=20, size=128, seed=3)


@pytest.fixture(scope="module")
def trained(tiles, tmp_path_factory):
    out = tmp_path_factory.mktemp("ugsrun")
    result = pretrain(tiles, out, tiny_net(), FAST, log=lambda m: None)
    return out, result


def test_shapes_through_every_block():
    x = torch.randn(2, 16, 20, 24)
    assert Bottleneck(16, 8, 2)(x).shape == (2, 32, 10, 12)
    eca = EnhancedCoordinateAttention(16, reduction=4, kernel=3)
    assert eca(x).shape == x.shape
    cfg = tiny_net(in_channels=4)
    img = torch.randn(2, 4, 128, 96)
    stages = Backbone(cfg)(img).stages
    assert [tuple(s.shape[-2:]) for s in stages] == [(32, 24), (16, 12), (8, 6), (4, 3)]
    assert [s.shape[1] for s in stages] == [w * 4 for w in cfg.widths]
    one = Backbone(dataclasses.replace(cfg, stem_stride=1))(img).stages
    assert tuple(one[0].shape[-2:]) == (64, 48)
    net = UGSNet(cfg).train()
    out = net(img)
    assert out["coarse"].shape == (2, 2, 32, 24)
    assert out["points"].shape == (2, cfg.points, 2)
    assert out["point_logits"].shape == (2, 2, cfg.points)
    net.eval()
    with torch.no_grad():
        assert net(img)["logits"].shape == (2, 2, 128, 96)
    d = Discriminator(2, (8, 8, 8, 8))
    assert d(torch.rand(2, 2, 128, 96)).shape == (2, 1, 4, 3)


def test_paper_backbone_is_resnet50():
    # ResNet-50 without its classifier has 23,508,032 parameters.
    plain = Backbone(dataclasses.replace(paper_net(), eca=False))
    assert sum(p.numel() for p in plain.parameters()) == 23_508_032
    assert paper_net().depths == (3, 4, 6, 3) and paper_net().decoder_channels == 96


def test_training_point_sampler_counts_and_uncertainty():
    coarse = torch.zeros(2, 2, 16, 16)
    coarse[:, 1] = torch.linspace(-4, 4, 16).view(1, 1, 16)  # uncertain in the middle columns
    n, k, beta = 40, 3, 0.75
    g1 = torch.Generator().manual_seed(5)
    pts = training_points(coarse, n, k, beta, g1)
    assert pts.shape == (2, n, 2)
    g2 = torch.Generator().manual_seed(5)
    cand = torch.rand(2, k * n, 2, generator=g2)
    unc = uncertainty(point_sample(coarse, cand))
    top = torch.topk(unc, 30, dim=1).indices
    for b in range(2):
        expected = cand[b, top[b]]
        assert torch.equal(torch.sort(pts[b, :30], dim=0).values,
                           torch.sort(expected, dim=0).values)
        rest = {tuple(p.tolist()) for p in cand[b]} - {tuple(p.tolist()) for p in expected}
        assert all(tuple(p.tolist()) in rest for p in pts[b, 30:])


def test_inference_picks_the_most_uncertain_cells():
    logits = torch.randn(1, 2, 8, 8)
    idx, coords = most_uncertain_cells(logits, 5)
    unc = uncertainty(logits).reshape(-1)
    assert set(idx[0].tolist()) == set(torch.topk(unc, 5).indices.tolist())
    i = idx[0, 0].item()
    assert coords[0, 0].tolist() == pytest.approx([(i % 8 + 0.5) / 8, (i // 8 + 0.5) / 8])


def test_dice_ignores_unlabelled_pixels():
    coarse = torch.zeros(1, 2, 4, 4)
    coarse[:, 1] = 10.0  # UGS everywhere
    labels = torch.ones(1, 16, 16, dtype=torch.long)
    assert dice_loss(coarse, labels).item() == pytest.approx(0.0, abs=1e-3)
    labels[:, :8] = IGNORE
    assert dice_loss(coarse, labels).item() == pytest.approx(0.0, abs=1e-3)
    labels[:, 8:] = 0
    assert dice_loss(coarse, labels).item() > 0.9


def test_split_is_5_2_3_and_fixed(tiles):
    split = ugs_data.discover(tiles, seed=0)
    assert [len(split[s]) for s in ("train", "val", "test")] == [10, 4, 6]
    assert (tiles / "split.csv").exists()
    assert ugs_data.discover(tiles, seed=99) == split  # the written split wins


def test_augmentation_crops_rotates_and_flips():
    img = np.arange(3 * 32 * 32, dtype=np.float32).reshape(3, 32, 32)
    lab = np.ones((32, 32), np.int64)
    a, b = ugs_data.augment(img, lab, 16, np.random.default_rng(0), rotate_p=0, flip_p=0)
    assert a.shape == (3, 16, 16) and (b == 1).all()
    _, b = ugs_data.augment(img, lab, 16, np.random.default_rng(0), rotate_p=1, flip_p=0,
                            degrees=30)
    assert (b == IGNORE).any() and (b == 1).any()  # corners brought in are ignored
    flipped, _ = ugs_data.augment(img, lab, 32, np.random.default_rng(0), rotate_p=0,
                                  flip_p=1)
    assert not np.array_equal(flipped, img)
    assert np.array_equal(np.sort(flipped.ravel()), np.sort(img.ravel()))


def test_bad_labels_and_missing_labels_are_refused(tmp_path):
    folder = make_tiles(tmp_path / "set", n=2, size=32)
    import rasterio

    lab = folder / "labels" / "tile_0000.png"
    with rasterio.open(lab, "r+") as dst:
        dst.write(np.full((1, 32, 32), 7, np.uint8))
    with pytest.raises(InputDataError, match="not 0/255"):
        ugs_data.read_label(lab)
    (folder / "labels" / "tile_0001.png").unlink()
    with pytest.raises(InputDataError, match="has no label"):
        ugs_data.discover(folder)


def test_loss_decreases_and_the_network_learns(trained):
    _, result = trained
    history = result["history"]
    assert history[-1]["loss"] < history[0]["loss"] - 0.2
    assert result["best_f1"] > 0.6  # the label is a simple function of the image
    lrs = [h["lr"] for h in history]  # constant for the first half, then linear decay
    half = FAST.epochs // 2
    assert lrs[:half] == [FAST.lr] * half
    steps = np.diff(lrs[half - 1:])
    assert (steps < 0).all() and np.allclose(steps, steps[0])


def test_resume_continues_exactly(tiles, tmp_path):
    cfg = dataclasses.replace(FAST, epochs=3)
    pretrain(tiles, tmp_path / "a", tiny_net(), cfg, log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_after_epoch_2(message):
        if message.startswith("epoch 2/"):
            raise Killed

    with pytest.raises(Killed):  # interrupted after epoch 2 (checkpoints already written)
        pretrain(tiles, tmp_path / "b", tiny_net(), cfg, log=kill_after_epoch_2)
    pretrain(tiles, tmp_path / "b", tiny_net(), cfg, resume=tmp_path / "b" / "last.pt",
             log=lambda m: None)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert b["epoch"] == 2 and len(b["history"]) == 3
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_adversarial_step_updates_both_networks(trained, tiles):
    out, _ = trained
    g = load_model(out / "best.pt")
    d = Discriminator(2, (8, 8, 8, 8))
    before_g = [p.detach().clone() for p in g.parameters()]
    before_d = [p.detach().clone() for p in d.parameters()]
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    xs = torch.rand(2, 3, 64, 64)
    ys = (torch.rand(2, 64, 64) > 0.5).long()
    losses = adversarial_step(g, d, opt_g, opt_d, xs, ys, torch.rand(2, 3, 64, 64), 1.0)
    assert set(losses) == {"d", "ugs", "adv"}
    assert any(not torch.equal(a, b) for a, b in zip(before_g, g.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, d.parameters(), strict=True))


def test_adapt_writes_a_loadable_generator(trained, tiles, tmp_path):
    out, _ = trained
    scene = make_scene(tmp_path / "target.tif", 100, 120, seed=9)
    summary = adapt(out / "best.pt", tiles, [scene], tmp_path / "adapted",
                    AdaptConfig(iterations=3, crop=64, checkpoint_every=2,
                                discriminator_widths=(8, 8, 8, 8)), log=lambda m: None)
    assert summary["iterations"] == 3
    model = load_model(tmp_path / "adapted" / "adapted.pt")
    assert isinstance(model.cfg, NetConfig)
    assert load_checkpoint(tmp_path / "adapted" / "adapted.pt")["iteration"] == 3


def _predicted(trained, tmp_path, height, width, seed, tile, overlap):
    """The trained model, the scene as a float image, and its windowed probability."""
    import rasterio

    model = load_model(trained[0] / "best.pt")
    scene = make_scene(tmp_path / "s.tif", height, width, seed=seed)
    predict_geotiff(model, scene, tmp_path / "l.tif", tile=tile, overlap=overlap,
                    batch_size=1, probability_path=tmp_path / "p.tif")
    with rasterio.open(scene) as src:
        image = src.read().astype(np.float32) / 255
    with rasterio.open(tmp_path / "p.tif") as src:
        prob = src.read(1)
    with rasterio.open(tmp_path / "l.tif") as src:
        labels = src.read(1)
    return model, image, prob, labels


def test_one_tile_equals_the_whole_image(trained, tmp_path):
    model, image, prob, labels = _predicted(trained, tmp_path, 128, 128, 4, 128, 32)
    with torch.no_grad():
        whole = torch.softmax(model(torch.from_numpy(image)[None])["logits"], 1)[0, 1].numpy()
    # the blend divides p·w by w in float64: equal to float32 rounding
    np.testing.assert_allclose(prob, whole, rtol=0, atol=1e-6)
    assert np.array_equal(labels, (whole >= 0.5).astype(np.uint8))


def test_windowed_prediction_equals_in_memory_blending(trained, tmp_path):
    model, image, prob, labels = _predicted(trained, tmp_path, 170, 230, 6, 64, 24)
    reference = predict_array(model, image, tile=64, overlap=24, batch_size=1)
    assert np.array_equal(prob, reference)
    assert np.array_equal(labels, (reference >= 0.5).astype(np.uint8))


def test_georeference_nodata_boundary_and_mosaic(trained, tmp_path):
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    out, _ = trained
    model = load_model(out / "best.pt")
    left = make_scene(tmp_path / "left.tif", 120, 100, seed=7, origin=(300_000, 2_550_000))
    with rasterio.open(left, "r+") as dst:
        dst.nodata = 0
        dst.write(np.zeros((3, 10, 10), np.uint8), window=((0, 10), (0, 10)))
    right = make_scene(tmp_path / "right.tif", 120, 100, seed=8, origin=(300_080, 2_549_990))
    zone = gpd.GeoSeries([box(300_000, 2_549_880, 300_150, 2_550_000)], crs="EPSG:32649")
    result = predict_mosaic(model, [left, right], tmp_path / "map.tif", boundary=zone,
                            tile=64, overlap=16, log=lambda m: None)
    assert len(result["images"]) == 2
    with rasterio.open(tmp_path / "map.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.crs.to_epsg() == 32649 and src.nodata == 255
        assert src.transform == from_origin(300_000, 2_550_000, 1, 1)
        assert (src.width, src.height) == (180, 130)  # the union of both grids
        assert src.colormap(1)[1][:3] == (34, 139, 34)
        m = src.read(1)
    assert (m[:10, :10] == 255).all()  # input no data
    assert (m[:, 150:] == 255).all()  # outside the boundary
    assert (m[120:, :80] == 255).all()  # covered by no image
    assert set(np.unique(m[20:100, 20:140]).tolist()) <= {0, 1}
    single = tmp_path / "left_only.tif"
    predict_geotiff(model, left, single, tile=64, overlap=16, boundary=zone)
    with rasterio.open(single) as src:
        assert np.array_equal(m[:120, :100], src.read(1))  # the first image wins


def test_cli_synth_train_predict(tmp_path):
    import rasterio
    from typer.testing import CliRunner

    from gbaugs.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["ugsnet", "synth", str(tmp_path / "d"), "--tiles", "10",
                            "--size", "64"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ugsnet", "train", str(tmp_path / "d" / "set"), "--out",
                            str(tmp_path / "run"), "--preset", "tiny", "--epochs", "1",
                            "--batch-size", "4", "--crop", "64"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ugsnet", "predict", str(tmp_path / "d" / "scene.tif"),
                            "--checkpoint", str(tmp_path / "run" / "best.pt"), "--out",
                            str(tmp_path / "map.tif"), "--tile", "128", "--overlap", "32"])
    assert r.exit_code == 0, r.output
    with rasterio.open(tmp_path / "map.tif") as a, \
            rasterio.open(tmp_path / "d" / "scene.tif") as b:
        assert a.transform == b.transform and a.shape == b.shape
    r = runner.invoke(app, ["ugsnet", "evaluate", str(tmp_path / "d" / "set"),
                            "--checkpoint", str(tmp_path / "run" / "best.pt")])
    assert r.exit_code == 0 and "f1" in r.output


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(InputDataError, match="not a gbaugs UGSNet checkpoint"):
        load_checkpoint(path)


def test_ugs_loss_without_point_head():
    net = UGSNet(dataclasses.replace(tiny_net(), point_head=False)).train()
    out = net(torch.rand(1, 3, 64, 64))
    assert "point_logits" not in out
    loss = ugs_loss(out, torch.zeros(1, 64, 64, dtype=torch.long))
    assert loss.item() > 0
