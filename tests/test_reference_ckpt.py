"""Importing the reference release's checkpoints (issue #13): checkpoints in the reference's key layout are built here
with random weights and every key spelt out, and mrdino's model is checked against an independent implementation of
the reference's equations written below (slot init, input MLP, slot attention, GRU, residual MLP, patch decoder,
slot decoder) and of the torch.hub DINOv2 forward pass (`get_intermediate_layers(x, [n], norm=True)`)."""
import math, pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mrdino.encoder import build_encoder, IMAGENET_MEAN, IMAGENET_STD
from mrdino.dinosaur import DinosaurConfig
from mrdino.windows import reference_windows
from mrdino.reference import load_reference_checkpoint
from mrdino.pipeline import load_trained
from test_dinosaur_encoder import random_hub_state_dict   # the same random torch.hub layout

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

M = 'models.'
PE = M + 'perceptual_grouping.positional_embedding.layers.1.'
SA = M + 'perceptual_grouping.slot_attention.'
OD = M + 'object_decoder.'
ENC = M + 'feature_extractor.model.'


def ref_state_dict(dim=8, feat=16, hidden=24, n_hidden=3, patches=9, head=True, head_hidden=20, seed=0):
    "Non-encoder weights of a reference CombinedModel (RandomConditioning, SlotAttentionGrouping, PatchDecoder[MLP])."
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3
    sd = {M + 'conditioning.slots_mu': r(1, 1, dim), M + 'conditioning.slots_logsigma': r(1, 1, dim),
          PE + '0.weight': 1 + r(feat), PE + '0.bias': r(feat), PE + '1.weight': r(feat, feat), PE + '1.bias': r(feat),
          PE + '3.weight': r(dim, feat), PE + '3.bias': r(dim),
          SA + 'to_q.weight': r(dim, dim), SA + 'to_k.weight': r(dim, dim), SA + 'to_v.weight': r(dim, dim),
          SA + 'gru.weight_ih': r(3 * dim, dim), SA + 'gru.weight_hh': r(3 * dim, dim),
          SA + 'gru.bias_ih': r(3 * dim), SA + 'gru.bias_hh': r(3 * dim),
          SA + 'norm_input.weight': 1 + r(dim), SA + 'norm_input.bias': r(dim),
          SA + 'norm_slots.weight': 1 + r(dim), SA + 'norm_slots.bias': r(dim),
          SA + 'ff_mlp.module.0.weight': 1 + r(dim), SA + 'ff_mlp.module.0.bias': r(dim),
          SA + 'ff_mlp.module.1.weight': r(4 * dim, dim), SA + 'ff_mlp.module.1.bias': r(4 * dim),
          SA + 'ff_mlp.module.3.weight': r(dim, 4 * dim), SA + 'ff_mlp.module.3.bias': r(dim),
          OD + 'pos_embed': r(1, patches, dim)}
    def mlp(name, width, out):
        dims = [dim] + [width] * n_hidden + [out]
        for i in range(len(dims) - 1):        # build_mlp: Linear at 0, 2, 4, ... with ReLU between
            sd[f'{OD}{name}.{2 * i}.weight'], sd[f'{OD}{name}.{2 * i}.bias'] = r(dims[i + 1], dims[i]), r(dims[i + 1])
    mlp('decoder', hidden, feat + 1)
    if head: mlp('slot_decoder', head_hidden, 1)
    return sd


def hub_state_dict(dim=16, depth=1, grid=37, seed=1):
    "A torch.hub DINOv2 state dict (LayerScale, mask_token), random."
    return random_hub_state_dict(dim=dim, depth=depth, grid=grid, seed=seed)


def save_ckpt(path, sd):
    "Lightning-style checkpoint: the state dict under 'state_dict' next to plain training state."
    torch.save({'state_dict': sd, 'epoch': 0, 'global_step': 2000, 'pytorch-lightning_version': '2.3.3',
                'loops': {'fit_loop': {'epoch_progress': {'total': {'ready': 1}}}}}, path)
    return path


# ---- the reference's equations, from scratch ----------------------------------------------------------------------
def ln(x, sd, p, eps=1e-5): return F.layer_norm(x, (x.shape[-1],), sd[p + 'weight'], sd[p + 'bias'], eps)
def lin(x, sd, p): return x @ sd[p + 'weight'].T + sd[p + 'bias']


def seq_mlp(x, sd, p):
    "Linear layers p0, p2, p4, ... with ReLU between (ocl build_mlp)."
    ids = sorted(int(k[len(p):].split('.')[0]) for k in sd if k.startswith(p) and k.endswith('weight'))
    for j, i in enumerate(ids):
        x = lin(x, sd, f'{p}{i}.')
        if j < len(ids) - 1: x = torch.relu(x)
    return x


def ref_forward(sd, feats, eps, iters=3):
    "Slots, masks and reconstruction of the reference's DINOSAUR on encoder features, initial-slot noise `eps`."
    slots = sd[M + 'conditioning.slots_mu'] + sd[M + 'conditioning.slots_logsigma'].exp() * eps          # (B, K, D)
    x = lin(torch.relu(lin(ln(feats, sd, PE + '0.'), sd, PE + '1.')), sd, PE + '3.')                      # (B, N, D)
    x = ln(x, sd, SA + 'norm_input.')
    k, v = x @ sd[SA + 'to_k.weight'].T, x @ sd[SA + 'to_v.weight'].T
    D = slots.shape[-1]
    for _ in range(iters):
        q = ln(slots, sd, SA + 'norm_slots.') @ sd[SA + 'to_q.weight'].T
        attn = (q @ k.transpose(1, 2) * D ** -0.5).softmax(1)                   # (B, K, N) over slots
        w = (attn + 1e-8); w = w / w.sum(-1, keepdim=True)
        upd = w @ v                                                              # (B, K, D)
        gi = upd @ sd[SA + 'gru.weight_ih'].T + sd[SA + 'gru.bias_ih']
        gh = slots @ sd[SA + 'gru.weight_hh'].T + sd[SA + 'gru.bias_hh']
        r = torch.sigmoid(gi[..., :D] + gh[..., :D]); z = torch.sigmoid(gi[..., D:2 * D] + gh[..., D:2 * D])
        n = torch.tanh(gi[..., 2 * D:] + r * gh[..., 2 * D:])
        slots = (1 - z) * n + z * slots
        ff = lin(torch.relu(lin(ln(slots, sd, SA + 'ff_mlp.module.0.'), sd, SA + 'ff_mlp.module.1.')), sd, SA + 'ff_mlp.module.3.')
        slots = slots + ff
    out = seq_mlp(slots[:, :, None, :] + sd[OD + 'pos_embed'][:, None], sd, OD + 'decoder.')   # (B, K, P, F + 1)
    alpha = out[..., -1].softmax(1)                                              # (B, K, P)
    recon = (alpha[..., None] * out[..., :-1]).sum(1)                            # (B, P, F)
    lam = torch.sigmoid(seq_mlp(slots, sd, OD + 'slot_decoder.'))[..., 0] if OD + 'slot_decoder.0.weight' in sd else None
    return slots, alpha, recon, lam


def hub_intermediate(sd, x, heads, n):
    "torch.hub DINOv2 `get_intermediate_layers(x, [n], norm=True)` patch tokens, written out (x already normalised)."
    B, dim = x.shape[0], sd['cls_token'].shape[-1]
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=14)
    g = t.shape[-1]
    t = t.flatten(2).transpose(1, 2)
    pos_cls, pos = sd['pos_embed'][:, :1], sd['pos_embed'][:, 1:]
    G = math.isqrt(pos.shape[1])
    if G != g:                                   # interpolate_pos_encoding: bicubic at scale (g + 0.1) / G, no antialias
        s = (g + 0.1) / G
        pos = F.interpolate(pos.reshape(1, G, G, dim).permute(0, 3, 1, 2), scale_factor=(s, s), mode='bicubic',
                            antialias=False).permute(0, 2, 3, 1).reshape(1, g * g, dim)
    t = torch.cat([sd['cls_token'].expand(B, -1, -1) + pos_cls, t + pos], 1)
    T, hd = t.shape[1], dim // heads
    lnh = lambda z, p: F.layer_norm(z, (dim,), sd[p + '.weight'], sd[p + '.bias'], eps=1e-6)
    for i in range(n + 1):
        p = f'blocks.{i}.'
        q, k, v = F.linear(lnh(t, p + 'norm1'), sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias']).reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
        o = ((q @ k.transpose(-2, -1)) / math.sqrt(hd)).softmax(-1) @ v
        t = t + sd[p + 'ls1.gamma'] * F.linear(o.transpose(1, 2).reshape(B, T, dim), sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])
        h = F.gelu(F.linear(lnh(t, p + 'norm2'), sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias']))
        t = t + sd[p + 'ls2.gamma'] * F.linear(h, sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
    return lnh(t, 'norm')[:, 1:]


def normalise(x): return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


TINY = dict(embed_dim=16, depth=1, num_heads=2)
CFG = DinosaurConfig.preset('synthetic', encoder='vit_small_patch14_dinov2', encoder_arch=TINY, crop=42, n_slots=5)


# ---- tests --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('head', [True, False])
def test_import_equals_reference_equations(tmp_path, head):
    sd = ref_state_dict(head=head)
    enc_sd = hub_state_dict()
    ck = save_ckpt(tmp_path / 'm.ckpt', {**sd, **{ENC + k: v for k, v in enc_sd.items()}})
    model, h = load_reference_checkpoint(ck, CFG)
    assert (h is not None) == head and not model.training and (h is None or not h.training)
    assert (model.cfg.slot_dim, model.cfg.decoder_hidden, model.cfg.decoder_layers, model.cfg.n_slots) == (8, 24, 3, 5)
    # every tensor of the file is in the model (random values: equal tensors are the same weight), and nothing else
    ours = [v for k, v in model.state_dict().items() if not k.startswith('encoder.')] + (list(h.state_dict().values()) if h else [])
    assert len(ours) == len(sd)
    for k, v in sd.items():
        assert sum(o.shape == v.shape and torch.equal(o, v) for o in ours) == 1, k
    # outputs = the reference's equations; λ = sigmoid(slot_decoder(slots))
    g = torch.Generator().manual_seed(5)
    feats, eps = torch.randn(3, 9, 16, generator=g), torch.randn(3, 5, 8, generator=g)
    with torch.no_grad():
        out = model(feats, noise=eps)
        slots, alpha, recon, lam = ref_forward(sd, feats, eps)
        torch.testing.assert_close(out.slots, slots, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.masks, alpha, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out.recon, recon, atol=1e-5, rtol=1e-5)
        if head: torch.testing.assert_close(h(out.slots), lam, atol=1e-6, rtol=1e-5)
    # the encoder is the checkpoint's own torch.hub DINOv2: features = get_intermediate_layers(x, [last], norm=True)
    x = torch.rand(2, 3, 42, 42, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), hub_intermediate(enc_sd, normalise(x), heads=2, n=0), atol=2e-5, rtol=1e-4)
    assert 'models.feature_extractor.model' in model.encoder.description


def test_encoder_from_weight_file_or_given(tmp_path):
    sd, enc_sd = ref_state_dict(), hub_state_dict(seed=7)
    ck = save_ckpt(tmp_path / 'no_encoder.ckpt', sd)
    with pytest.raises(ValueError, match='no encoder weights.*encoder_weights.*dinov2_vitb14_pretrain.pth'):
        load_reference_checkpoint(ck, CFG)
    torch.save(enc_sd, tmp_path / 'dinov2_tiny_pretrain.pth')
    model, _ = load_reference_checkpoint(ck, CFG, encoder_weights=str(tmp_path / 'dinov2_tiny_pretrain.pth'))
    x = torch.rand(1, 3, 42, 42)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), hub_intermediate(enc_sd, normalise(x), 2, 0), atol=2e-5, rtol=1e-4)
    enc = build_encoder(DinosaurConfig.preset('synthetic', encoder_arch=TINY, crop=42))
    model2, _ = load_reference_checkpoint(ck, CFG, encoder=enc)
    assert model2.encoder is enc
    # a file's encoder that does not fit is named with the model's needs
    wide = build_encoder(DinosaurConfig.preset('synthetic', encoder_arch=dict(TINY, embed_dim=32), crop=42))
    with pytest.raises(ValueError, match='9 patches of 16-d features.*gives 9 of 32-d'):
        load_reference_checkpoint(ck, CFG, encoder=wide)
    with pytest.raises(ValueError, match='9 patch positions.*crop 56'):
        load_reference_checkpoint(ck, DinosaurConfig.preset('synthetic', crop=56), encoder=enc)


def test_strictness_errors_name_the_keys(tmp_path):
    enc = build_encoder(DinosaurConfig.preset('synthetic', encoder_arch=TINY, crop=42))
    sd = ref_state_dict()
    sd.pop(SA + 'norm_slots.bias'); sd[SA + 'to_k.bias'] = torch.zeros(8); sd[M + 'object_decoder.extra.weight'] = torch.zeros(2)
    sd[OD + 'slot_decoder.2.weight'] = torch.zeros(20, 21)
    with pytest.raises(ValueError) as e:
        load_reference_checkpoint(save_ckpt(tmp_path / 'bad.ckpt', sd), CFG, encoder=enc)
    msg = str(e.value)
    assert 'missing keys: models.perceptual_grouping.slot_attention.norm_slots.bias' in msg
    assert 'models.perceptual_grouping.slot_attention.to_k.bias' in msg and 'models.object_decoder.extra.weight' in msg
    assert 'models.object_decoder.slot_decoder.2.weight: file (20, 21) vs model (20, 20)' in msg
    with pytest.raises(ValueError, match=r"missing reference keys \['models.object_decoder.pos_embed'\]"):
        load_reference_checkpoint(save_ckpt(tmp_path / 'nopos.ckpt', {k: v for k, v in ref_state_dict().items() if 'pos_embed' not in k}), CFG, encoder=enc)


class _Payload:
    "Unpickling this would create a file: proof that no code runs."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (Path.touch, (Path(self.path),))


def test_bad_files_give_clear_errors_and_run_no_code(tmp_path):
    (tmp_path / 'text.ckpt').write_text('this is a web page, not a checkpoint\n' * 20)
    good = save_ckpt(tmp_path / 'good.ckpt', ref_state_dict())
    data = good.read_bytes(); (tmp_path / 'cut.ckpt').write_bytes(data[:len(data) // 2])
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {M + 'x': torch.zeros(1)}, 'payload': _Payload(marker)}, tmp_path / 'evil.ckpt')
    with open(tmp_path / 'evil_plain.ckpt', 'wb') as f: pickle.dump(_Payload(marker), f)
    for name in ('text.ckpt', 'cut.ckpt', 'evil.ckpt', 'evil_plain.ckpt'):
        with pytest.raises(ValueError, match=f'{name} is not a readable PyTorch checkpoint.*weights_only=True'):
            load_reference_checkpoint(tmp_path / name, CFG)
        assert not marker.exists()
    torch.save([torch.zeros(2)], tmp_path / 'list.ckpt')
    with pytest.raises(ValueError, match='not a checkpoint of the reference release'):
        load_reference_checkpoint(tmp_path / 'list.ckpt', CFG)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_reference_checkpoint(tmp_path / 'missing.ckpt', CFG)


def test_auto_preset_and_load_trained(tmp_path):
    enc_sd = hub_state_dict(depth=1)
    sd = {**ref_state_dict(patches=27 * 27), **{ENC + k: v for k, v in enc_sd.items()}}
    ck = save_ckpt(tmp_path / 'kitti_mr_stage2.ckpt', sd)
    kitti_tiny = DinosaurConfig.preset('kitti', encoder='vit_small_patch14_dinov2', encoder_arch=TINY)
    model, head, desc = load_trained(ck, preset=kitti_tiny)
    assert head is not None and (model.cfg.crop, model.cfg.n_slots, model.cfg.grid) == (378, 15, 27)
    assert 'reference checkpoint kitti_mr_stage2.ckpt' in desc and 'its stage-2 head' in desc and 'feature_extractor' in desc
    with pytest.raises(ValueError, match='no preset has 9 patches'):
        load_trained(save_ckpt(tmp_path / 'odd.ckpt', {**ref_state_dict(), **{ENC + k: v for k, v in enc_sd.items()}}))


def release_windows(img):
    "KITTI evaluation windows as the release makes them: ToTensor, bicubic Resize of the float tensor (torchvision 0.15:"
    "no antialiasing for tensors), clamp, HWC numpy, zero padding 126 px left/right, 378-px windows every 378 px."
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    x = F.interpolate(x[None], size=(378, 1260), mode='bicubic', align_corners=False)[0].clamp(0, 1)
    a = x.permute(1, 2, 0).numpy()
    pad = np.zeros((378, 1260 + 252, 3), a.dtype); pad[:, 126:126 + 1260] = a
    return np.stack([pad[:, x0:x0 + 378] for x0 in range(0, 1512, 378)]), [x0 - 126 for x0 in range(0, 1512, 378)]


def test_reference_inputs_and_dinov2_features(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (375, 1242, 3), dtype=np.uint8)
    wins, lay = reference_windows(img, 'kitti', 378)
    want, lefts = release_windows(img)
    np.testing.assert_allclose(wins, want, atol=1e-6)
    assert lay.origins == [(0, l) for l in lefts] and lay.size == (378, 1260)
    # and torchvision's own transform agrees (with antialias=False, its 0.15 default for tensors)
    from torchvision import transforms as T
    tv = T.Compose([T.ToTensor(), T.Resize([378, 1260], interpolation=T.InterpolationMode.BICUBIC, antialias=False)])(img).clamp(0, 1)
    np.testing.assert_allclose(wins[2], tv[:, :, 630:1008].permute(1, 2, 0).numpy(), atol=1e-6)
    # DINOv2 features of a window: the hub model's get_intermediate_layers(x, [11], norm=True) with 12 blocks
    enc_sd = hub_state_dict(dim=16, depth=12, seed=3)
    torch.save(enc_sd, tmp_path / 'hub12.pth')
    enc = build_encoder(DinosaurConfig.preset('kitti', encoder='vit_small_patch14_dinov2', encoder_weights=str(tmp_path / 'hub12.pth'),
                                              encoder_arch=dict(embed_dim=16, depth=12, num_heads=2)))
    x = torch.from_numpy(wins[:2]).permute(0, 3, 1, 2)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), hub_intermediate(enc_sd, normalise(x), heads=2, n=11), atol=5e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="protocol 'tri_pd' has windows"):
        reference_windows(img, 'tri_pd', 378)
