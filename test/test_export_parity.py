"""Every registered architecture exported to ONNX (static shapes, named I/O) agrees with
PyTorch in ONNX Runtime within 1e-4 on the same random input."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from training.export import export_onnx  # noqa: E402
from training.models import NETWORKS, JointCnnRnn3dCnn  # noqa: E402

N_CLASSES = 8
ATOL = 1e-4


def graphs():
    """(id, role, architecture): the joint network exports as its three parts."""
    for role, reg in NETWORKS.items():
        for name, cls in reg.items():
            if cls is JointCnnRnn3dCnn:
                for part in ("audio_net", "video_net", "fusion_net"):
                    yield pytest.param(role, name, part, id=f"{name}.{part}")
            else:
                yield pytest.param(role, name, None, id=name)


def perturb_batchnorm(net, gen):
    """Non-trivial running statistics, so that export folds real numbers."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.mark.parametrize("role,name,part", list(graphs()))
def test_onnx_runtime_matches_pytorch(role, name, part, tmp_path):
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = NETWORKS[role][name](N_CLASSES)
    if part is not None:
        net = getattr(net, part)
    perturb_batchnorm(net, gen)
    if name == "seed002_late_weighted":
        net.set_weight(0.3)
    net.eval()
    inputs = list(net.example_inputs(1, gen))
    input_names = [f"input_{i}" for i in range(len(inputs))]
    path = tmp_path / f"{name}.onnx"
    specs = export_onnx(net, inputs, input_names, ["logits", "features"], path, atol=ATOL)
    with torch.no_grad():
        ref = [t.numpy() for t in net(*inputs)]
    assert [s.shape for s in specs] == [list(r.shape) for r in ref]
    assert ref[0].shape == (1, N_CLASSES) and ref[1].shape == (1, net.feature_dim)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == input_names
    assert [i.shape for i in sess.get_inputs()] == [list(x.shape) for x in inputs]  # static
    assert [o.name for o in sess.get_outputs()] == ["logits", "features"]
    got = sess.run(["logits", "features"], {n: x.numpy() for n, x in zip(input_names, inputs)})
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        assert float(np.max(np.abs(g - r))) <= ATOL
