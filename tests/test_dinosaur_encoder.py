"""DINOv2 encoder: weight files in both layouts, checked against a from-scratch forward pass of the torch.hub model."""
import math
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mrdino.dinosaur import DinosaurConfig
from mrdino.encoder import (FrozenDinov2, build_encoder, build_vit,
                            timm_to_hub_layout, IMAGENET_MEAN, IMAGENET_STD, STANDIN_TAG)

TINY = dict(embed_dim=32, depth=2, num_heads=2)


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def random_hub_state_dict(dim=32, depth=2, grid=37, n_reg=0, seed=0):
    "A state dict in the facebookresearch torch.hub DINOv2 layout, every tensor random (LayerScale included)."
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=0.2: torch.randn(*s, generator=g) * scale
    sd = {'cls_token': r(1, 1, dim), 'pos_embed': r(1, 1 + grid * grid, dim), 'mask_token': r(1, dim),
          'patch_embed.proj.weight': r(dim, 3, 14, 14, scale=0.05), 'patch_embed.proj.bias': r(dim),
          'norm.weight': 1 + r(dim), 'norm.bias': r(dim)}
    if n_reg: sd['register_tokens'] = r(1, n_reg, dim)
    for i in range(depth):
        p = f'blocks.{i}.'
        sd.update({p + 'norm1.weight': 1 + r(dim), p + 'norm1.bias': r(dim),
                   p + 'attn.qkv.weight': r(3 * dim, dim), p + 'attn.qkv.bias': r(3 * dim),
                   p + 'attn.proj.weight': r(dim, dim), p + 'attn.proj.bias': r(dim), p + 'ls1.gamma': r(dim, scale=0.5),
                   p + 'norm2.weight': 1 + r(dim), p + 'norm2.bias': r(dim),
                   p + 'mlp.fc1.weight': r(4 * dim, dim), p + 'mlp.fc1.bias': r(4 * dim),
                   p + 'mlp.fc2.weight': r(dim, 4 * dim), p + 'mlp.fc2.bias': r(dim), p + 'ls2.gamma': r(dim, scale=0.5)})
    return sd


def hub_forward(sd, images, heads):
    """DINOv2 as the torch.hub model defines it, written from scratch: patch tokens of the last block after the final norm.
    Tokens: [cls + pos_cls, registers (no position), patches + pos]; position grid resampled bicubically without
    antialiasing at scale (g + 0.1) / G; pre-norm blocks with LayerScale; LayerNorm eps 1e-6; exact GELU."""
    x = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    B, dim = x.shape[0], sd['cls_token'].shape[-1]
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=14)   # (B, F, g, g)
    g = t.shape[-1]
    t = t.flatten(2).transpose(1, 2)                                                          # (B, g*g, F)
    pos_cls, pos = sd['pos_embed'][:, :1], sd['pos_embed'][:, 1:]
    G = math.isqrt(pos.shape[1])
    if G != g:
        s = (g + 0.1) / G
        pos = F.interpolate(pos.reshape(1, G, G, dim).permute(0, 3, 1, 2), scale_factor=(s, s), mode='bicubic',
                            antialias=False).permute(0, 2, 3, 1).reshape(1, g * g, dim)
    t = torch.cat([sd['cls_token'].expand(B, -1, -1) + pos_cls, t + pos], 1)
    n_reg = 0
    if 'register_tokens' in sd:
        n_reg = sd['register_tokens'].shape[1]
        t = torch.cat([t[:, :1], sd['register_tokens'].expand(B, -1, -1), t[:, 1:]], 1)
    depth = len({k.split('.')[1] for k in sd if k.startswith('blocks.')})
    ln = lambda z, p: F.layer_norm(z, (dim,), sd[p + '.weight'], sd[p + '.bias'], eps=1e-6)
    T, hd = t.shape[1], dim // heads
    for i in range(depth):
        p = f'blocks.{i}.'
        qkv = F.linear(ln(t, p + 'norm1'), sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias'])
        q, k, v = qkv.reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)                        # (B, heads, T, hd) each
        a = ((q @ k.transpose(-2, -1)) / math.sqrt(hd)).softmax(-1)
        o = (a @ v).transpose(1, 2).reshape(B, T, dim)
        t = t + sd[p + 'ls1.gamma'] * F.linear(o, sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])
        h = F.gelu(F.linear(ln(t, p + 'norm2'), sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias']))
        t = t + sd[p + 'ls2.gamma'] * F.linear(h, sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
    return ln(t, 'norm')[:, 1 + n_reg:]


@pytest.mark.parametrize('name,n_reg,grid', [('vit_small_patch14_dinov2', 0, 37), ('vit_small_patch14_reg4_dinov2', 4, 37),
                                             ('vit_small_patch14_dinov2', 0, 9)])
def test_hub_checkpoint_matches_hub_forward(tmp_path, name, n_reg, grid):
    sd = random_hub_state_dict(n_reg=n_reg, grid=grid)
    torch.save(sd, tmp_path / 'dinov2_vits14_pretrain.pth')
    cfg = DinosaurConfig.preset('synthetic', encoder=name, encoder_arch=TINY, encoder_weights=str(tmp_path / 'dinov2_vits14_pretrain.pth'))
    enc = build_encoder(cfg)
    assert 'hub layout' in enc.description and STANDIN_TAG not in enc.description
    x = torch.rand(3, 3, 126, 126, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, ref = enc(x), hub_forward(sd, x, heads=2)
    assert ours.shape == (3, 81, 32)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize('name', ['vit_small_patch14_dinov2', 'vit_small_patch14_reg4_dinov2'])
def test_timm_and_hub_files_give_identical_features(tmp_path, name):
    src = build_vit(name, 518, TINY)
    torch.manual_seed(3)
    for p in src.parameters(): p.data.normal_(0, 0.2)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, str(tmp_path / 'model.safetensors'))
    torch.save(timm_to_hub_layout(sd, reg='reg4' in name), tmp_path / 'hub.pth')
    encs = [build_encoder(DinosaurConfig.preset('synthetic', encoder=name, encoder_arch=TINY, encoder_weights=str(tmp_path / f)))
            for f in ('model.safetensors', 'hub.pth')]
    x = torch.rand(2, 3, 126, 126)
    a, b = encs[0](x), encs[1](x)
    assert a.shape == (2, 81, 32)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the hub file also matches the from-scratch hub forward pass: the timm layout is read the same way
    hub = torch.load(tmp_path / 'hub.pth', weights_only=True)
    torch.testing.assert_close(a, hub_forward(hub, x, heads=2), atol=2e-5, rtol=1e-4)


def test_wrong_model_file_names_file_and_keys(tmp_path):
    torch.save(random_hub_state_dict(dim=48, n_reg=4), tmp_path / 'dinov2_other.pth')
    cfg = DinosaurConfig.preset('synthetic', encoder='vit_small_patch14_dinov2', encoder_arch=TINY,
                                encoder_weights=str(tmp_path / 'dinov2_other.pth'))
    with pytest.raises(ValueError) as e: build_encoder(cfg)
    msg = str(e.value)
    assert 'dinov2_other.pth' in msg and 'unexpected keys: reg_token' in msg and 'cls_token: file (1, 1, 48) vs model (1, 1, 32)' in msg
    assert 'reg4' in msg                                  # says what the file looks like
    save_file({'conv1.weight': torch.zeros(4, 3, 3, 3)}, str(tmp_path / 'resnet.safetensors'))
    with pytest.raises(ValueError, match='resnet.safetensors.*missing keys: blocks.0.attn.proj.bias.*not a ViT'):
        build_encoder(DinosaurConfig.preset('synthetic', encoder_weights=str(tmp_path / 'resnet.safetensors')))


def test_no_weights_is_an_error_not_a_silent_fallback(tmp_path):
    with pytest.raises(ValueError, match='no encoder weights'):
        build_encoder(DinosaurConfig.preset('kitti'))
    with pytest.raises(FileNotFoundError, match='missing.pth.*dinov2_vitb14_pretrain.pth'):
        build_encoder(DinosaurConfig.preset('kitti', encoder_weights=str(tmp_path / 'missing.pth')))


def test_encoder_frozen_and_logged(capsys):
    enc = build_encoder(DinosaurConfig.preset('synthetic'))
    assert isinstance(enc, FrozenDinov2) and not any(p.requires_grad for p in enc.parameters())
    assert not enc.train().vit.training
    assert STANDIN_TAG in capsys.readouterr().out
