"""Hostile inputs to the data layer (issue cases 3, 6, 9, 17, 19a): a frame edited in the middle with its size and time
kept, damage in the middle of a video, zero-byte frames, a video that ends long before its header says, and listing
many generated videos. Every input is built here, small."""
import contextlib, dataclasses, gc, io, json, os, pickle, time, weakref
from pathlib import Path

import av, cv2, numpy as np, pytest

import mrdino.data as data
import mrdino.worlds as worlds
from mrdino.data import BadFrameError, input_identity, identity_changes
from mrdino.worlds import make_street_video, make_world_dataset
from mrdino.readers import read_folder, read_rgb, read_source
from mrdino.cli import main


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    "Each test its own file-hash cache (the default lives in the user's home)."
    monkeypatch.setenv('MRDINO_HASH_CACHE', str(tmp_path / 'file-hashes.sqlite'))


def _street(n=6, h=42, w=140, seed=0): return make_street_video(seed, n_frames=n, height=h, width=w).frames


def _write_frames(d:Path, frames, ext='.png')->Path:
    d.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(frames): assert cv2.imwrite(str(d / f'{t:06d}{ext}'), f[..., ::-1])
    return d


def _edit_middle_keep_size_and_mtime(f:Path):
    "Paint a box into the middle rows of a BMP (uncompressed: only bytes in the middle change), then put its time back."
    st = f.stat()
    im = cv2.imread(str(f))
    h = im.shape[0]
    im[h // 2 - 4:h // 2 + 4, 20:60] = (0, 0, 255)
    assert cv2.imwrite(str(f), im)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (f.stat().st_size, f.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


# ---- case 3: the input identity covers every byte ----

def test_identity_sees_a_box_painted_in_the_middle_of_a_bmp(tmp_path):
    # a 140×42 BMP is 17.7 KB: its first and last 4 KiB are the header and the outer rows, the box is in neither
    d = _write_frames(tmp_path / 'seq', _street(3), '.bmp')
    before = input_identity(read_folder(tmp_path)[0])
    _edit_middle_keep_size_and_mtime(d / '000001.bmp')
    assert identity_changes(before, input_identity(read_folder(tmp_path)[0])) == '1 file(s) changed (000001.bmp)'


def test_cached_hash_is_not_used_after_an_edit_that_keeps_size_and_mtime(tmp_path, monkeypatch):
    # the cache is keyed by the file's stat: writing changes its ctime, which no program can set back
    monkeypatch.setattr(data, '_RACY_NS', -1)                       # cache even a file changed a moment ago
    d = _write_frames(tmp_path / 'seq', _street(2), '.bmp')
    f = d / '000001.bmp'
    first = data.file_hashes([f])
    time.sleep(0.05)                                                # past the file system's timestamp granularity
    _edit_middle_keep_size_and_mtime(f)
    again = data.file_hashes([f])
    assert again != first and again == [data._hash_file(f)]


def test_pseudolabel_rerun_redoes_a_sequence_edited_in_the_middle(tmp_path, caplog):
    from mrdino.pseudolabels import pseudolabel
    d = _write_frames(tmp_path / 'src' / 'seq', _street(6), '.bmp')
    kw = dict(tau_static=1.7, progress=False)
    assert pseudolabel(tmp_path / 'src', tmp_path / 'pl', **kw)['sequences'] == 1
    assert pseudolabel(tmp_path / 'src', tmp_path / 'pl', **kw)['sequences'] == 0       # unchanged: reused
    _edit_middle_keep_size_and_mtime(d / '000002.bmp')
    with caplog.at_level('WARNING'):
        r = pseudolabel(tmp_path / 'src', tmp_path / 'pl', **kw)
    assert r['sequences'] == 1 and '1 file(s) changed (000002.bmp)' in caplog.text   # relabelled, saying why


def test_record_of_the_old_head_and_tail_identity_is_redone(tmp_path, caplog):
    # what mrdino wrote before: per file [path, size, mtime_ns, sha1 of size + first and last 4 KiB], no 'content' key
    import hashlib
    from mrdino.pseudolabels import pseudolabel
    d = _write_frames(tmp_path / 'src' / 'seq', _street(6), '.bmp')
    root = pseudolabel(tmp_path / 'src', tmp_path / 'pl', tau_static=1.7, progress=False)['out']
    def head_tail(p):
        b = p.read_bytes(); h = hashlib.sha1(str(len(b)).encode()); h.update(b[:4096]); h.update(b[max(4096, len(b) - 4096):])
        return h.hexdigest()[:16]
    files = [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns, head_tail(p)] for p in sorted(d.iterdir())]
    (root / 'records' / 'seq.input.json').write_text(json.dumps(dict(name='seq', frames=6, files=files, pixels=None, speeds=None)))
    with caplog.at_level('WARNING'):
        r = pseudolabel(tmp_path / 'src', tmp_path / 'pl', tau_static=1.7, progress=False)
    assert r['sequences'] == 1 and 'older mrdino' in caplog.text


# ---- case 6: damage in the middle of a video ----

def _mpeg4_avi(path:Path, frames, gop:int=10)->list:
    "An MPEG-4 part 2 AVI written with PyAV, a key frame every `gop` frames; returns where each frame's chunk starts."
    with av.open(str(path), 'w') as c:
        st = c.add_stream('mpeg4', rate=10)
        st.width, st.height, st.pix_fmt, st.gop_size = frames.shape[2], frames.shape[1], 'yuv420p', gop
        for f in frames: c.mux(st.encode(av.VideoFrame.from_ndarray(f, format='rgb24')))
        c.mux(st.encode())
    with av.open(str(path)) as c: return [p.pos for p in c.demux(video=0) if p.size]


def test_damage_in_the_middle_of_a_video_keeps_frame_numbers_and_names_the_damaged_frames(tmp_path, capsys):
    pos = _mpeg4_avi(tmp_path / 'walk.avi', _street(30, 64, 96, seed=1))
    buf = bytearray((tmp_path / 'walk.avi').read_bytes())
    buf[pos[13]:pos[16]] = (bytes(range(256)) * 64)[:pos[16] - pos[13]]      # frames 13-15, chunk headers and all
    (tmp_path / 'bad').mkdir(); (tmp_path / 'bad' / 'walk.avi').write_bytes(buf)
    good, s = read_source(tmp_path / 'walk.avi')[0], read_source(tmp_path / 'bad' / 'walk.avi')[0]
    assert len(s) == 30
    kept = [f.index for f in s.iter_frames(skip_bad=True)]
    # 13-15 hold garbage; 16-19 are predicted from them (key frames at 0, 10, 20): all damaged, everything else intact
    assert [i for i, _ in s.skipped] == list(range(13, 20)) and kept == [*range(13), *range(20, 30)]
    assert all('frame' in m and 'walk.avi' in m for _, m in s.skipped)
    for i in (0, 12, 20, 25, 29): np.testing.assert_array_equal(s[i].image, good[i].image)   # true numbers, true pixels
    fresh = pickle.loads(pickle.dumps(read_source(tmp_path / 'bad' / 'walk.avi')[0]))          # random access in a worker
    np.testing.assert_array_equal(fresh[25].image, good[25].image)
    with pytest.raises(BadFrameError, match=r'frame 17 of video .*walk\.avi: decoded from damaged frame 15'): fresh[17]
    assert main(['info', str(tmp_path / 'bad'), '--check']) == 1
    out = capsys.readouterr().out
    bad = [l for l in out.splitlines() if 'bad:' in l]
    assert len(bad) == 2 and 'frames 13–15 (3)' in bad[0] and 'frames 16–19 (4)' in bad[1], out
    assert '1 sequences, 30 frames, 7 bad' in out


# ---- case 9: zero-byte frames ----

def test_zero_byte_frame_is_a_bad_frame_naming_the_file(tmp_path, capsys):
    d = _write_frames(tmp_path / 'seq', _street(4))
    (d / '000002.png').write_bytes(b'')
    with pytest.raises(BadFrameError, match=r'000002\.png in seq is an empty file'): read_rgb(d / '000002.png', 'seq')
    assert main(['info', str(tmp_path), '--check']) == 1
    o = capsys.readouterr()
    assert '000002.png' in o.out and '1 bad' in o.out and 'Traceback' not in o.err


def test_zero_byte_frame_is_skipped_by_pseudolabel(tmp_path):
    from mrdino.pseudolabels import pseudolabel
    d = _write_frames(tmp_path / 'src' / 'seq', _street(6))
    (d / '000003.png').write_bytes(b'')
    r = pseudolabel(tmp_path / 'src', tmp_path / 'pl', tau_static=1.7, progress=False)
    rows = (r['out'] / 'index.csv').read_text().splitlines()
    assert r['frames'] == 6 and any('unreadable' in l and '000003.png' in l for l in rows)


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    "A DINOSAUR run folder with a one-layer, 16-dim stand-in encoder trained one step (predict's plumbing, not quality)."
    from mrdino.dinosaur import DinosaurConfig, train_dinosaur
    out = tmp_path_factory.mktemp('model') / 'dinosaur'
    cfg = DinosaurConfig.preset('synthetic', steps=1, batch_size=2, n_slots=3, decoder_hidden=16,
                                encoder_arch=dict(embed_dim=16, depth=1, num_heads=2))
    with contextlib.redirect_stdout(io.StringIO()):
        train_dinosaur(cfg, list(_street(2)), out, cache=False, device='cpu', progress=False)
    return out


def test_zero_byte_frame_is_skipped_by_predict_and_the_run_finishes(tiny_model, tmp_path, capsys, one_thread):
    d = _write_frames(tmp_path / 'src', _street(4))
    (d / '000001.png').write_bytes(b'')
    assert main(['predict', str(tiny_model), str(d), str(tmp_path / 'out'), '--no-overlays', '--device', 'cpu']) == 0
    run = json.loads((tmp_path / 'out' / 'run.json').read_text())
    assert run['status'] == 'done' and [s['index'] for s in run['frames']['skipped']] == [1]
    assert run['frames']['written'] == 3 and '000001.png' in capsys.readouterr().err


# ---- case 17: a video that ends long before its header says: ranges, not a line per frame ----

def _cut_video(tmp_path:Path)->Path:
    "A 30-frame AVI cut off where frame 10's chunk starts: the header still promises 30 frames, the file holds 10."
    pos = _mpeg4_avi(tmp_path / 'full.avi', _street(30, 64, 96, seed=2))
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'cut.avi').write_bytes((tmp_path / 'full.avi').read_bytes()[:pos[10]])
    return tmp_path / 'src' / 'cut.avi'


def test_missing_tail_of_a_video_is_one_line_in_info(tmp_path, capsys):
    v = _cut_video(tmp_path)
    assert main(['info', str(v), '--check']) == 1
    out = capsys.readouterr().out
    bad = [l for l in out.splitlines() if 'bad:' in l]
    assert len(bad) == 1 and 'frames 10–29 (20)' in bad[0] and 'ends early' in bad[0], out
    assert '20 bad' in out


def test_missing_tail_of_a_video_is_summarised_by_predict_and_listed_in_run_json(tiny_model, tmp_path, capsys, one_thread):
    v = _cut_video(tmp_path)
    assert main(['predict', str(tiny_model), str(v), str(tmp_path / 'out'), '--no-overlays', '--device', 'cpu']) == 0
    o = capsys.readouterr()
    skipped = [l for l in o.err.splitlines() if l.startswith('predict: skipped')]
    assert len(skipped) == 1 and 'frames 10–29 (20)' in skipped[0], o.err
    run = json.loads((tmp_path / 'out' / 'run.json').read_text())
    assert [s['index'] for s in run['frames']['skipped']] == list(range(10, 30))      # the full list stays in the record
    assert len(o.out.splitlines()) < 40 and 'ends early' not in o.out                  # stdout: a summary, not run.json


def test_summarize_skipped_groups_runs_of_the_same_trouble():
    sk = [dict(sequence='a', index=i, error=f"frame {i:06d}.png in a is an empty file, 0 bytes (/d/a/{i:06d}.png): re-export it")
          for i in (3, 4, 5, 9)] + [dict(sequence='b', index=10, error='frame 000010.png in b is 12×10, the sequence is 84×28')]
    assert data.summarize_skipped(sk) == [
        'frames 000003.png–000005.png (3) in a is an empty file, 0 bytes (/d/a/000003.png): re-export it',
        'frame 000009.png in a is an empty file, 0 bytes (/d/a/000009.png): re-export it',
        'frame 000010.png in b is 12×10, the sequence is 84×28']


# ---- case 19a (and 18's synthetic:N): generated sources are listed without being made, one made at a time ----

def test_synthetic_source_is_listed_without_generating_and_checked_one_video_at_a_time(monkeypatch, capsys):
    @dataclasses.dataclass
    class Small(worlds.StreetConfig): height:int=28; width:int=84; n_frames:int=3      # the default street, made small
    monkeypatch.setattr(worlds, 'StreetConfig', Small)
    monkeypatch.setitem(worlds._WORLD_MAKERS, 'street', (worlds.make_street_video, Small))   # the worlds' table names the class
    made, real = [], worlds.make_world_video
    def counting(*a, **kw):
        gc.collect()
        made.append((weakref.ref(v := real(*a, **kw)), sum(r() is not None for r, _ in made)))   # (video, alive before)
        return v
    monkeypatch.setattr(worlds, 'make_world_video', counting)
    seqs = read_source('synthetic:3')
    assert [s.name for s in seqs] == ['street_000', 'street_001', 'street_002'] and made == []
    del seqs
    assert main(['info', 'synthetic:3', '--check']) == 0 and '3 sequences, 9 frames, 0 bad' in capsys.readouterr().out
    assert len(made) == 3 and max(alive for _, alive in made) == 0      # each video let go before the next is made


def test_synthetic_source_gives_the_frames_of_make_world_dataset():
    a, b = read_source('synthetic:2', n_frames=4, height=28, width=84), make_world_dataset(2, n_frames=4, height=28, width=84)
    for s, v in zip(a, b):
        assert s.name == v.name and len(s) == len(v)
        for t in range(4): np.testing.assert_array_equal(s[t].image, v.frames[t]); np.testing.assert_array_equal(s[t].gt, v.instances[t])
        np.testing.assert_array_equal(s.flow, v.flow)


@pytest.mark.parametrize('src, says', [('synthetic:0', 'must be >= 1'), ('synthetic:-1', 'must be >= 1'),
                                       ('synthetic:abc', 'expected synthetic:N'), ('synthetic-eval:x', 'expected synthetic:N')])
def test_bad_synthetic_count_is_one_line(src, says, capsys):
    assert main(['info', src]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
