"RAFT / SMURF weight loading: key layouts, input convention, errors (CPU, random weights, small images)."
import functools, logging, re

import numpy as np
import pytest
import torch
import torch.nn as nn

from mrdino.flow import RaftFlow, compute_flow, get_backend
from mrdino.raft import SmurfCorrBlock, build_raft, raft_state_dict

# Independent re-statement of the princeton-vl RAFT key layout (torchvision name -> princeton name), written from
# the princeton-vl module tree (fnet/cnet BasicEncoder: conv1, norm1, layerN.M.{conv1,conv2,norm1,norm2,norm3,
# downsample.0, downsample.1}, conv2; update_block: encoder.{convc1,convc2,convf1,convf2,conv}, gru.conv{z,r,q}{1,2},
# flow_head.conv{1,2}, mask.{0,2}).
TV2PR = [
    (r'^feature_encoder\.', 'fnet.'), (r'^context_encoder\.', 'cnet.'),
    (r'^(fnet|cnet)\.convnormrelu\.0\.', r'\1.conv1.'), (r'^(fnet|cnet)\.convnormrelu\.1\.', r'\1.norm1.'),
    (r'^(fnet|cnet)\.conv\.', r'\1.conv2.'),
    (r'\.convnormrelu(\d)\.0\.', r'.conv\1.'), (r'\.convnormrelu(\d)\.1\.', r'.norm\1.'),
    (r'^update_block\.motion_encoder\.convcorr(\d)\.0\.', r'update_block.encoder.convc\1.'),
    (r'^update_block\.motion_encoder\.convflow(\d)\.0\.', r'update_block.encoder.convf\1.'),
    (r'^update_block\.motion_encoder\.conv\.0\.', 'update_block.encoder.conv.'),
    (r'^update_block\.recurrent_block\.convgru(\d)\.conv([zrq])\.', r'update_block.gru.conv\2\1.'),
    (r'^mask_predictor\.convrelu\.0\.', 'update_block.mask.0.'), (r'^mask_predictor\.conv\.', 'update_block.mask.2.'),
]

def to_princeton(sd):
    out = {}
    for k, v in sd.items():
        n = k
        for pat, rep in TV2PR: n = re.sub(pat, rep, n)
        out['module.' + n] = v.clone()
        if m := re.fullmatch(r'(fnet|cnet)\.(layer\d\.\d)\.downsample\.1\.(.*)', n):   # same module, second name
            out[f'module.{m[1]}.{m[2]}.norm3.{m[3]}'] = v.clone()
    return out

# SMURF TF variable names (the TF checkpoint's object graph), kernels stored HWIO.
def to_smurf_tf(sd):
    out = {}
    for k, v in sd.items():
        n = k
        for pat, rep in [(r'^context_encoder\.', 'feature_model/cnet/'), (r'^feature_encoder\.', 'feature_model/fnet/'),
                         (r'convnormrelu\.0\.', 'conv1/'), (r'/conv\.', '/conv2/'),
                         (r'layer(\d)\.(\d)\.convnormrelu(\d)\.0\.', r'layer\1/layer_with_weights-\2/conv\3/'),
                         (r'layer(\d)\.(\d)\.downsample\.0\.', r'layer\1/layer_with_weights-\2/downsample/layer_with_weights-0/'),
                         (r'^update_block\.motion_encoder\.convcorr(\d)\.0\.', r'flow_model/update_block/encoder/convc\1/'),
                         (r'^update_block\.motion_encoder\.convflow(\d)\.0\.', r'flow_model/update_block/encoder/convf\1/'),
                         (r'^update_block\.motion_encoder\.conv\.0\.', 'flow_model/update_block/encoder/conv/'),
                         (r'^update_block\.recurrent_block\.convgru(\d)\.conv([zrq])\.', r'flow_model/update_block/gru/conv\2\1/'),
                         (r'^update_block\.flow_head\.conv(\d)\.', r'flow_model/update_block/flow_head/conv\1/'),
                         (r'^mask_predictor\.convrelu\.0\.', 'flow_model/update_block/mask/layer_with_weights-0/'),
                         (r'^mask_predictor\.conv\.', 'flow_model/update_block/mask/layer_with_weights-1/')]:
            n = re.sub(pat, rep, n)
        kernel = n.endswith('/weight')
        n = re.sub(r'/weight$', '/kernel', n) + '/.ATTRIBUTES/VARIABLE_VALUE'
        out[n] = (v.permute(2, 3, 1, 0) if kernel else v).numpy().copy()        # OIHW -> HWIO
    out['feature_model/fnet/conv1/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE'] = np.zeros(3)
    out['save_counter/.ATTRIBUTES/VARIABLE_VALUE'] = np.array(1)
    return out

@functools.lru_cache(maxsize=None)
def random_model(arch='large', smurf=False, seed=0):
    "A RAFT network with random weights and batch-norm statistics (cached: treat as read-only)."
    torch.manual_seed(seed)
    m = build_raft(arch, smurf)
    with torch.no_grad():
        for p in m.parameters(): p.copy_(torch.randn_like(p) * 0.05)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
    return m.eval()

@pytest.fixture(scope='module')
def frames():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    return a, np.roll(a, 2, axis=1)

def test_princeton_layout_matches_known_keys():
    pr = to_princeton(random_model().state_dict())
    # facts about princeton-vl raft-things.pth (RAFT-large): names and shapes
    known = {'module.fnet.conv1.weight': (64, 3, 7, 7), 'module.fnet.conv2.weight': (256, 128, 1, 1),
             'module.cnet.layer2.0.norm3.running_var': (96,), 'module.cnet.layer2.0.downsample.1.weight': (96,),
             'module.update_block.encoder.convc1.weight': (256, 324, 1, 1),   # 4 levels × 9² correlation channels
             'module.update_block.encoder.conv.weight': (126, 256, 3, 3),     # 192 + 64 in, 128 - 2 out
             'module.update_block.gru.convz1.weight': (128, 384, 1, 5),       # hidden 128 + input 256
             'module.update_block.gru.convq2.weight': (128, 384, 5, 1),
             'module.update_block.mask.2.weight': (576, 256, 1, 1),           # 8·8·9 upsampling weights
             'module.update_block.flow_head.conv2.weight': (2, 256, 3, 3)}
    for k, shape in known.items(): assert tuple(pr[k].shape) == shape, k
    assert not any('convnormrelu' in k or 'feature_encoder' in k for k in pr)

def test_princeton_and_torchvision_files_give_identical_flow(tmp_path, frames):
    sd = random_model().state_dict()
    torch.save(sd, tmp_path / 'tv.pth')
    torch.save(to_princeton(sd), tmp_path / 'raft-things.pth')
    a = RaftFlow(weights=tmp_path / 'tv.pth', iters=1, device='cpu')
    b = RaftFlow(weights=tmp_path / 'raft-things.pth', iters=1, device='cpu')
    assert (a.layout, b.layout) == ('torchvision', 'princeton-vl')
    for k, v in a.model.state_dict().items(): assert torch.equal(v, b.model.state_dict()[k]), k
    fa, fb = a(*frames), b(*frames)
    assert fa.shape == (128, 128, 2) and np.isfinite(fa).all() and np.abs(fa).max() > 0
    np.testing.assert_array_equal(fa, fb)
    # the weights were really loaded: a fresh network's parameters differ
    fresh = build_raft('large').state_dict()
    assert not torch.equal(fresh['update_block.flow_head.conv2.weight'], b.model.state_dict()['update_block.flow_head.conv2.weight'])

def test_princeton_duplicate_norm_must_agree(tmp_path):
    pr = to_princeton(random_model().state_dict())
    pr['module.cnet.layer2.0.norm3.weight'] = pr['module.cnet.layer2.0.norm3.weight'] + 1
    with pytest.raises(ValueError, match='two different values'): raft_state_dict(pr)

def test_raft_small_princeton_layout():
    sd = random_model('small').state_dict()
    pr = {}
    for k, v in sd.items():   # RAFT-small: bottleneck blocks (conv1..3, norm4 = downsample norm), gru without 1/2
        n = k
        for pat, rep in TV2PR: n = re.sub(pat, rep, n)
        n = re.sub(r'update_block\.gru\.conv([zrq])1\.', r'update_block.gru.conv\1.', n)
        pr['module.' + n] = v
    got, layout = raft_state_dict(pr, arch='small')
    assert layout == 'princeton-vl' and set(got) == set(sd)
    assert all(torch.equal(got[k], sd[k]) for k in sd)

def test_smurf_tf_variables_give_identical_flow(tmp_path, frames):
    sd = random_model(smurf=True).state_dict()
    assert not any(k.startswith('context_encoder') and ('running' in k or '.1.weight' in k) for k in sd)  # instance norm
    torch.save(sd, tmp_path / 'smurf_kitti.pt')
    np.savez(tmp_path / 'smurf_tf.npz', **to_smurf_tf(sd))
    a = RaftFlow(weights=tmp_path / 'smurf_kitti.pt', smurf=True, iters=1, device='cpu')
    b = RaftFlow(weights=tmp_path / 'smurf_tf.npz', smurf=True, iters=1, device='cpu')
    assert b.layout == 'smurf-tf'
    np.testing.assert_array_equal(a(*frames), b(*frames))

def test_smurf_correlation_window_is_transposed():
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 4, 16, 24), torch.randn(2, 4, 16, 24)
    coords = torch.rand(2, 2, 16, 24) * torch.tensor([23., 15.]).view(1, 2, 1, 1)
    tv = build_raft('large').corr_block
    sm = SmurfCorrBlock(num_levels=4, radius=4)
    tv.build_pyramid(f1, f2); sm.build_pyramid(f1, f2)
    a, b = tv.index_pyramid(coords), sm.index_pyramid(coords)
    a = a.view(2, 4, 9, 9, 16, 24); b = b.view(2, 4, 9, 9, 16, 24)
    assert torch.equal(b[:, :, 2, 7], a[:, :, 7, 2]) and not torch.equal(b[:, :, 2, 7], a[:, :, 2, 7])
    assert torch.equal(b[:, :, 4, 4], a[:, :, 4, 4])                           # the centre stays

def test_weights_that_do_not_fit(tmp_path):
    torch.save(random_model('small').state_dict(), tmp_path / 'small.pth')
    with pytest.raises(ValueError, match='do not fit'): RaftFlow(weights=tmp_path / 'small.pth', device='cpu')
    torch.save(random_model().state_dict(), tmp_path / 'tv.pth')
    with pytest.raises(ValueError, match='do not fit'):  # RAFT-large weights have context batch norm; SMURF has none
        RaftFlow(weights=tmp_path / 'tv.pth', smurf=True, device='cpu')

def test_missing_weights_are_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv('MRDINO_RAFT_WEIGHTS', raising=False)
    monkeypatch.delenv('MRDINO_SMURF_WEIGHTS', raising=False)
    missing = tmp_path / 'nowhere' / 'smurf_kitti.pt'
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as e: RaftFlow(weights=missing, smurf=True)
    assert 'smurf_tf_to_torchvision' in str(e.value)
    with pytest.raises(FileNotFoundError, match='raft-'): get_backend('raft', weights=tmp_path / 'raft.pth')
    with pytest.raises(ValueError, match='needs a weight file'): get_backend('raft')
    with pytest.raises(ValueError, match='needs a weight file'): compute_flow(np.zeros((8, 8, 3), np.uint8),
                                                                             np.zeros((8, 8, 3), np.uint8), 'smurf')
    monkeypatch.setenv('MRDINO_SMURF_WEIGHTS', str(missing))
    with pytest.raises(FileNotFoundError, match='MRDINO_SMURF_WEIGHTS'): RaftFlow(smurf=True)

def test_random_weights_are_explicit_and_logged(caplog, frames):
    with caplog.at_level(logging.WARNING, logger='mrdino.flow'):
        b = RaftFlow(weights='random', iters=1, device='cpu')
    assert 'RANDOM' in caplog.text and 'RANDOM' in b.describe()

class Probe(nn.Module):
    "Stands in for RAFT: records its input, returns flow (1, 1) everywhere at the input's size."
    def forward(self, x0, x1, num_flow_updates=12):
        self.x0, self.n = x0, num_flow_updates
        return [torch.zeros(x0.shape[0], 2, *x0.shape[-2:]), torch.ones(x0.shape[0], 2, *x0.shape[-2:])]

@pytest.mark.parametrize('fit', ['pad', 'resize'])
def test_input_convention_and_size_fitting(fit):
    b = RaftFlow(weights='random', fit=fit, device='cpu')
    b.model = Probe()
    im = np.zeros((100, 150, 3), np.uint8); im[:, :75] = 255
    f = b(im, im)
    x = b.model.x0
    assert b.model.n == 12                                              # 12 updates, the last is returned
    assert tuple(x.shape[-2:]) == (128, 152)                            # multiples of 8, at least 128
    assert float(x.min()) == -1 and float(x.max()) == 1                 # RGB scaled to [-1, 1]
    assert f.shape == (100, 150, 2)
    if fit == 'pad':
        np.testing.assert_array_equal(f, 1)                             # cropped, not rescaled
        assert float(x[0, 0, 0, 0]) == 1 and float(x[0, 0, -1, -1]) == -1  # replicated edges
    else:                                                               # resized back: u·150/152, v·100/128
        np.testing.assert_allclose(f[..., 0], 150 / 152, rtol=1e-6)
        np.testing.assert_allclose(f[..., 1], 100 / 128, rtol=1e-6)

def test_smurf_defaults_to_resize_raft_to_pad():
    assert RaftFlow(weights='random', smurf=True, device='cpu').fit == 'resize'
    assert RaftFlow(weights='random', device='cpu').fit == 'pad'
