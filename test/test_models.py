"""Every registered network: shapes, finite gradients, a tiny batch overfitted; late fusion
weight fitting; the joint network's three exportable parts."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.models import (AUDIO_FEATURE_KINDS, AUDIO_NETWORKS, FUSION_NETWORKS,  # noqa: E402
                             NETWORKS, VIDEO_NETWORKS, JointCnnRnn3dCnn, LateFusion,
                             audio_feature_kind, build_network, fit_late_fusion_weight,
                             joint_loss)

N_CLASSES = 4
# Small inputs where a network's shape allows it, so that the whole file stays fast.
SMALL = {
    "seed001_cnn": (64, 96), "seed001_cnn_rnn": (64, 96), "seed001_cnn_lstm": (64, 96),
    "seed003_1dcnn": (180, 8), "seed002_mlp": (65,),
    "seed003_3dcnn": (16, 20, 18), "avemo_3dcnn": (8, 24, 16), "seed002_frame_cnn": (2, 24, 24),
    "fer2013_mini_xception": (2, 32, 32),
    "seed003_concat_dense128": ((64,), (64,)),
    "seed000_joint": ((64, 96), (8, 24, 16)),
}
TRAINABLE = [(role, name) for role, reg in NETWORKS.items() for name in reg
             if name != LateFusion.architecture]
ALL = [(role, name) for role, reg in NETWORKS.items() for name in reg]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def small(role, name, **kw):
    return build_network(role, name, N_CLASSES, SMALL.get(name), **kw)


def test_registry_lists_every_seed_network():
    assert set(AUDIO_NETWORKS) == {"seed001_cnn", "seed001_cnn_rnn", "seed001_cnn_lstm",
                                   "seed003_1dcnn", "seed002_mlp"}
    assert set(VIDEO_NETWORKS) == {"seed003_3dcnn", "avemo_3dcnn", "seed002_frame_cnn",
                                   "fer2013_mini_xception"}
    assert set(FUSION_NETWORKS) == {"seed003_concat_dense128", "seed002_late_weighted",
                                    "seed000_joint"}
    for role, reg in NETWORKS.items():
        for name, cls in reg.items():
            assert cls.architecture == name and cls.role == role
    kinds = {name: audio_feature_kind(name) for name in AUDIO_NETWORKS}
    assert kinds == {"seed001_cnn": "spectrogram", "seed001_cnn_rnn": "spectrogram",
                     "seed001_cnn_lstm": "spectrogram", "seed003_1dcnn": "frame_features",
                     "seed002_mlp": "summary_features"}
    assert set(kinds.values()) == set(AUDIO_FEATURE_KINDS)
    assert audio_feature_kind("seed000_joint") == "spectrogram"
    assert FUSION_NETWORKS["seed002_late_weighted"].fusion_inputs == "logits"
    assert FUSION_NETWORKS["seed003_concat_dense128"].fusion_inputs == "features"


def test_unknown_names_and_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="known: seed003_3dcnn"):
        build_network("video", "resnet", N_CLASSES)
    with pytest.raises(ValueError, match="roles: audio"):
        build_network("text", "seed002_mlp", N_CLASSES)
    net = build_network("audio", "seed001_cnn_rnn", N_CLASSES)
    with pytest.raises(ValueError, match=r"seed001_cnn_rnn: expected input of shape "
                                         r"\(B, 1, 200, 300\)"):
        net(torch.zeros(1, 1, 200, 299))
    with pytest.raises(ValueError, match="at least 4 time frames"):
        build_network("audio", "seed003_1dcnn", N_CLASSES, (180, 3))
    with pytest.raises(ValueError, match="weight must be in"):
        LateFusion(N_CLASSES, weight=1.5)


# (shape of the input tensors at batch B without it, logits dim, features dim) at the defaults
DEFAULTS = {
    "seed001_cnn": ([(1, 200, 300)], 64), "seed001_cnn_rnn": ([(1, 200, 300)], 64),
    "seed001_cnn_lstm": ([(1, 200, 300)], 64), "seed003_1dcnn": ([(180, 20)], 64),
    "seed002_mlp": ([(65,)], 64), "seed003_3dcnn": ([(1, 30, 80, 70)], 64),
    "avemo_3dcnn": ([(1, 20, 100, 60)], 64), "seed002_frame_cnn": ([(1, 10, 48, 48)], 512),
    "fer2013_mini_xception": ([(1, 20, 64, 64)], 128),
    "seed003_concat_dense128": ([(64,), (64,)], 128),
    "seed002_late_weighted": ([(N_CLASSES,), (N_CLASSES,)], N_CLASSES),
    "seed000_joint": ([(1, 200, 300), (1, 20, 100, 60)], 128),
}


@pytest.mark.parametrize("role,name", ALL)
def test_default_shapes(role, name):
    net = build_network(role, name, N_CLASSES).eval()
    inputs = net.example_inputs(2)
    shapes, feature_dim = DEFAULTS[name]
    assert [tuple(x.shape[1:]) for x in inputs] == shapes
    with torch.no_grad():
        out = net(*inputs)
    logits, feats = out[:2]  # the joint network returns more after these two
    assert logits.shape == (2, N_CLASSES) and feats.shape == (2, feature_dim)
    assert net.feature_dim == feature_dim


def forward_loss(net, inputs, y):
    out = net(*inputs)
    if isinstance(net, JointCnnRnn3dCnn):
        return out.logits, joint_loss(out, y)
    logits, _ = out
    return logits, torch.nn.functional.cross_entropy(logits, y)


@pytest.mark.parametrize("role,name", TRAINABLE)
def test_backward_gives_finite_gradients_everywhere(role, name):
    net = small(role, name).train()
    logits, loss = forward_loss(net, net.example_inputs(3), torch.tensor([0, 1, 2]))
    loss.backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert any(float(p.grad.abs().sum()) > 0 for p in net.parameters())


@pytest.mark.parametrize("role,name", TRAINABLE)
def test_overfits_a_tiny_batch(role, name):
    net = small(role, name)
    inputs = net.example_inputs(8)
    y = torch.arange(8) % N_CLASSES
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(150):
        net.train()
        _, loss = forward_loss(net, inputs, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 4:
            net.eval()
            with torch.no_grad():
                logits = net(*inputs)[0]
            if (logits.argmax(1) == y).all():
                break
    else:
        pytest.fail(f"{name}: train accuracy {(logits.argmax(1) == y).float().mean():.2f} "
                    f"after 150 steps (loss {loss.item():.3f})")


def test_late_fusion_is_the_weighted_average_of_probabilities():
    a, v = torch.randn(5, N_CLASSES), torch.randn(5, N_CLASSES)
    net = LateFusion(N_CLASSES, weight=0.3)
    assert list(net.parameters()) == []
    logits, p = net(a, v)
    want = 0.3 * a.softmax(1) + 0.7 * v.softmax(1)
    torch.testing.assert_close(p, want)
    torch.testing.assert_close(logits, want.log())
    torch.testing.assert_close(p.sum(1), torch.ones(5))
    net.set_weight(1.0)
    torch.testing.assert_close(net(a, v)[1], a.softmax(1))
    # Saturated logits stay finite.
    big = torch.tensor([[1e4, -1e4, 0.0, 0.0]])
    assert torch.isfinite(net(big, big)[0]).all()


def constructed_probabilities(n, accurate_audio: float, accurate_video: float, seed=0):
    """Confident one-hot-ish probabilities correct on the given fractions of samples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)

    def branch(acc):
        pred = np.where(rng.random(n) < acc, y, (y + rng.integers(1, N_CLASSES, n)) % N_CLASSES)
        conf = rng.uniform(0.5, 0.9, n)
        p = np.tile(((1 - conf) / (N_CLASSES - 1))[:, None], (1, N_CLASSES))
        p[np.arange(n), pred] = conf
        return p

    return branch(accurate_audio), branch(accurate_video), y


def test_late_fusion_weight_recovers_the_better_modality():
    pa, pv, y = constructed_probabilities(400, 0.9, 0.4)
    w_audio = fit_late_fusion_weight(pa, pv, y)
    pa2, pv2, y2 = constructed_probabilities(400, 0.4, 0.9, seed=1)
    w_video = fit_late_fusion_weight(pa2, pv2, y2)
    assert w_audio > 0.5 > w_video

    def acc(w, a, v, t):
        return ((w * a + (1 - w) * v).argmax(1) == t).mean()

    grid = np.linspace(0, 1, 101)
    assert acc(w_audio, pa, pv, y) == max(acc(w, pa, pv, y) for w in grid)
    assert acc(w_audio, pa, pv, y) >= acc(1.0, pa, pv, y) > acc(0.0, pa, pv, y)
    # Equal branches: every weight ties, the middle one wins.
    assert fit_late_fusion_weight(pa, pa, y) == 0.5
    with pytest.raises(ValueError, match="same shape|one shape"):
        fit_late_fusion_weight(pa, pv[:10], y)


def test_joint_parts_reproduce_the_joint_forward():
    net = small("fusion", "seed000_joint").eval()
    audio, video = net.example_inputs(3)
    with torch.no_grad():
        out = net(audio, video)
        la, fa = net.audio_net(audio)
        lv, fv = net.video_net(video)
        lf, ff = net.fusion_net(fa, fv)
    for got, want in ((out.logits, lf), (out.features, ff), (out.audio_logits, la),
                      (out.audio_features, fa), (out.video_logits, lv), (out.video_features, fv)):
        torch.testing.assert_close(got, want)
    assert out[0] is out.logits and out[1] is out.features
    assert net.audio_net.architecture == "seed001_cnn_rnn"
    assert net.video_net.architecture == "avemo_3dcnn"
    assert net.fusion_net.architecture == "seed000_joint"
    assert la.shape == lv.shape == (3, N_CLASSES)


def test_joint_loss_trains_the_branch_heads_too():
    net = small("fusion", "seed000_joint").train()
    out = net(*net.example_inputs(4))
    y = torch.arange(4) % N_CLASSES
    fused_only = joint_loss(out, y, aux_weight=0.0)
    torch.testing.assert_close(fused_only, torch.nn.functional.cross_entropy(out.logits, y))
    joint_loss(out, y).backward()
    assert net.audio_net.classifier.weight.grad.abs().sum() > 0
    assert net.video_net.classifier.weight.grad.abs().sum() > 0
    with pytest.raises(TypeError, match="JointOutput"):
        joint_loss((out.logits, out.features), y)
