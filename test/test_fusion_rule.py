"""The fusion rule (avemo_ros.fusion_rule): which fusion a bundle holds, how modalities combine,
and parity with what EmotionEstimator.infer does."""
from types import SimpleNamespace

import numpy as np
import pytest

from avemo_ros import fusion_rule as fr
from avemo_ros.estimator import AUDIO, VIDEO, EmotionEstimator, softmax
from avemo_ros.manifest import FUSION_INPUTS, ModelSpec, TensorSpec, fusion_source

C = 5


class _IntermediateNet:
    def forward(self, audio_features, video_features):  # the parameter names are what counts
        return audio_features, video_features


class _LateNet:
    def forward(self, audio_logits, video_logits):
        return audio_logits, video_logits


def _spec(names, shape=(1, C)):
    return ModelSpec(file="f.onnx", architecture="x", inputs=[TensorSpec(n, list(shape))
                                                               for n in names],
                     outputs=[TensorSpec("logits", [1, C]), TensorSpec("features", [1, 4])])


@pytest.mark.parametrize("names,source,kind", [
    (("audio_features", "video_features"), fr.FEATURES, "intermediate"),
    (("audio_logits", "video_logits"), fr.LOGITS, "late")])
def test_fusion_source_from_every_description(names, source, kind):
    spec = _spec(names)
    manifest = SimpleNamespace(models={"fusion": spec})
    as_dict = {"models": {"fusion": {"inputs": [{"name": n, "shape": [1, C]} for n in names]}}}
    net = _IntermediateNet if source == fr.FEATURES else _LateNet
    for d in (names, list(names), spec, manifest, as_dict, as_dict["models"]["fusion"], net,
              net()):
        assert fr.fusion_source(d) == source, d
        assert fr.fusion_kind(d) == kind
    assert fusion_source(spec) == source  # the manifest's own check agrees


def test_fusion_rule_knows_the_manifests_pairs():
    assert fr.FUSION_INPUTS == FUSION_INPUTS


def test_unknown_fusion_inputs_refused_with_the_names():
    with pytest.raises(fr.FusionRuleError, match="audio_x"):
        fr.fusion_source(("audio_x", "video_x"))


def test_training_networks_are_recognised():
    torch = pytest.importorskip("torch")  # noqa: F841
    from training.models import FUSION_NETWORKS, build_network
    for name in ("seed002_late_weighted", "seed003_concat_dense128"):
        cls = FUSION_NETWORKS[name]
        assert fr.fusion_source(cls) == cls.fusion_inputs, name
    late = build_network("fusion", "seed002_late_weighted", C, weight=0.3)
    assert fr.fusion_kind(late) == "late"
    joint = build_network("fusion", "seed000_joint", C)  # exported as its fusion_net head
    assert fr.fusion_kind(joint) == "intermediate" == fr.FUSION_KINDS[joint.fusion_inputs]


def test_combine_rule():
    pa, pv, pf = (np.full(C, x, np.float32) for x in (0.1, 0.2, 0.3))
    assert fr.combine(pa, pv, lambda: pf)[1] == AUDIO | VIDEO
    np.testing.assert_array_equal(fr.combine(pa, pv, lambda: pf)[0], pf)
    called = []
    p, m = fr.combine(pa, None, lambda: called.append(1))
    assert m == AUDIO and p is pa and not called
    p, m = fr.combine(None, pv, lambda: called.append(1))
    assert m == VIDEO and p is pv and not called
    p, m = fr.combine(None, None, lambda: called.append(1))
    assert m == 0 and p.shape == (0,) and not called


def test_combine_batch_matches_combine_per_window():
    rng = np.random.default_rng(0)
    n = 40
    pa, pv, pf = (rng.dirichlet(np.ones(C), n).astype(np.float32) for _ in range(3))
    ha, hv = rng.random(n) < 0.6, rng.random(n) < 0.6
    got = fr.combine_batch(pa, pv, pf, ha, hv)
    assert got.dtype == np.float32 and got.shape == (n, C)
    for i in range(n):
        one, mods = fr.combine(pa[i] if ha[i] else None, pv[i] if hv[i] else None,
                               lambda: pf[i])
        assert mods == fr.modalities(ha[i], hv[i])
        np.testing.assert_array_equal(got[i], one if mods else np.zeros(C))


def test_late_fusion_and_fit():
    pa, pv = np.eye(3)[[0, 1]], np.eye(3)[[2, 2]]
    np.testing.assert_allclose(fr.late_fusion(pa, pv, 0.25), 0.25 * pa + 0.75 * pv)
    with pytest.raises(fr.FusionRuleError):
        fr.late_fusion(pa, pv, 1.5)
    pa = np.array([[0.6, 0.4, 0.0], [0.4, 0.6, 0.0]])  # right, but less sure than video
    assert fr.fit_late_fusion_weight(pa, pv, np.array([0, 1])) == pytest.approx(0.63)
    assert fr.fit_late_fusion_weight(pa, pv, np.array([2, 2])) == 0.5  # ties: closest to 0.5


def test_softmax_is_the_estimators():
    z = np.array([1.0, -2.0, 3.5, 0.0], np.float32)
    np.testing.assert_array_equal(fr.softmax(z), softmax(z))
    assert fr.softmax(z).dtype == np.float32


class _Net:
    """A fake backend: logits and features as fixed functions of the inputs."""

    def __init__(self, fn):
        self.fn, self.name = fn, "fake"

    def run(self, feeds):
        return self.fn(*feeds.values())

    def close(self):
        pass


def _estimator(source: str) -> EmotionEstimator:
    names = next(k for k, v in FUSION_INPUTS.items() if v == source)
    wa, wv = np.random.default_rng(1).standard_normal((2, 6, C + 4))

    def modality(w):
        return lambda x: {"logits": (x.reshape(1, -1) @ w)[:, :C],
                          "features": (x.reshape(1, -1) @ w)[:, C:]}

    def fusion(a, b):
        z = np.concatenate([a, b], 1)
        return {"logits": z[:, :C] * 0.5 - z[:, -C:], "features": z}

    est = EmotionEstimator.__new__(EmotionEstimator)
    est.manifest = SimpleNamespace(models={"audio": _spec(["spectrogram"], (1, 6)),
                                           "video": _spec(["faces"], (1, 6)),
                                           "fusion": _spec(names)})
    est.nets = {"audio": _Net(modality(wa)), "video": _Net(modality(wv)), "fusion": _Net(fusion)}
    est._fusion_source = fusion_source(est.manifest.models["fusion"])
    return est


@pytest.mark.parametrize("source", [fr.FEATURES, fr.LOGITS])
def test_parity_with_the_estimator(source):
    est = _estimator(source)
    rng = np.random.default_rng(2)
    a, v = rng.standard_normal((2, 6)).astype(np.float32)
    for x_a, x_v in ((a, v), (a, None), (None, v), (None, None)):
        p, mods, pa, pv, _ = est.infer(x_a, x_v)
        outs = {r: est._run(r, x) for r, x in (("audio", x_a), ("video", x_v)) if x is not None}
        qa = fr.softmax(outs["audio"]["logits"]) if "audio" in outs else None
        qv = fr.softmax(outs["video"]["logits"]) if "video" in outs else None
        src = fr.fusion_source(est.manifest)

        def fuse():
            out = est.nets["fusion"].run({"a": outs["audio"][src], "v": outs["video"][src]})
            return fr.softmax(out["logits"])
        q, m = fr.combine(qa, qv, fuse)
        assert m == mods
        np.testing.assert_array_equal(q, p)
        for mine, theirs in ((qa, pa), (qv, pv)):
            assert (mine is None) == (theirs is None)
